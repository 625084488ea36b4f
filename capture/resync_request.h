// What `sluice init` and `sluice resync` ask of the SQLite file besides the
// install itself: its source id without changing anything (PeekSourceId), and
// a durable request to read some tracked tables whole (RequestFullRead), which
// a running agent picks up with its next read. CLI thread; blocking.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "capture/capture_options.h"
#include "common/status.h"

namespace sluice {

// The file's source id; nullopt when the file has no sluice objects (never
// prepared, or uninstalled). Read-only: never creates or converts anything.
Result<std::optional<std::string>> PeekSourceId(const CaptureOptions& options);

// Marks `tables` (tracked tables of the file) for a full read in one short
// write transaction, or none of them when one cannot be marked: kNotFound for
// a table gone from the file or not tracked yet, kInvalidArgument for one the
// filter leaves out or an internal one (the message says which).
Status RequestFullRead(const CaptureOptions& options, const std::vector<std::string>& tables);

}  // namespace sluice
