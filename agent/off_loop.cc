// RunOffLoop over uv_queue_work; the request owns both callbacks and frees itself.
#include "agent/off_loop.h"

#include <spdlog/spdlog.h>

#include <exception>

namespace sluice {
namespace {

struct WorkRequest {
  uv_work_t req;
  std::function<void()> work;
  std::function<void()> done;
};

void DoWork(uv_work_t* req) noexcept {
  auto* w = static_cast<WorkRequest*>(req->data);
  try {
    w->work();
  } catch (const std::exception& e) {
    spdlog::critical("unexpected exception in worker: {}", e.what());
    std::terminate();
  }
}

void AfterWork(uv_work_t* req, int /*status*/) noexcept {
  auto* w = static_cast<WorkRequest*>(req->data);
  std::function<void()> done = std::move(w->done);
  delete w;
  done();
}

}  // namespace

bool RunOffLoop(uv_loop_t* loop, std::function<void()> work, std::function<void()> done) {
  auto* w = new WorkRequest{{}, std::move(work), std::move(done)};
  w->req.data = w;
  if (uv_queue_work(loop, &w->req, DoWork, AfterWork) != 0) {
    delete w;
    return false;
  }
  return true;
}

}  // namespace sluice
