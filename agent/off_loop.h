// RunOffLoop: runs blocking work (SQLite) on libuv's thread pool and its
// completion back on the loop thread. The work must not touch loop-owned state
// that the loop may change meanwhile; the completion may.
#pragma once

#include <uv.h>

#include <functional>

namespace sluice {

// Returns false (and runs nothing) if libuv refused the request.
bool RunOffLoop(uv_loop_t* loop, std::function<void()> work, std::function<void()> done);

}  // namespace sluice
