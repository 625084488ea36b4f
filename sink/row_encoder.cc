// Row encoding for the data statements (see row_encoder.h).
#include "sink/row_encoder.h"

#include <map>
#include <optional>
#include <set>

#include "common/copy_text.h"
#include "sink/pg_sql.h"  // kExpectedRowMarker
#include "sink/value_encoder.h"

namespace sluice {
namespace {

// Identity of a change's row (table and key values), to keep the last change per row.
std::string RowIdentity(const TableShape& shape, const Change& c) {
  std::string id = std::to_string(c.table) + ":";
  auto add = [&id](const Value& v) {
    id += std::to_string(static_cast<int>(v.kind)) + ":";
    if (v.kind == Value::Kind::kInteger) id += std::to_string(v.integer);
    if (v.kind == Value::Kind::kReal) id += FormatDouble(v.real);
    if (v.kind == Value::Kind::kText || v.kind == Value::Kind::kBlob) {
      id += std::to_string(v.bytes.size()) + ":" + v.bytes;
    }
    id += ";";
  };
  if (c.kind == Change::Kind::kDelete) {
    for (const Value& v : c.values) add(v);
  } else {
    for (size_t k : shape.KeyColumns()) {
      if (k < c.values.size()) add(c.values[k]);
    }
  }
  return id;
}

// Encodes one change into *rows, or parks it in *parked. *sink_key gets the
// row's key as PostgreSQL will see it (the converted key values), "" if parked.
Status EncodeChange(const TableShape& shape, const MirrorTable& t, const Change& c, size_t index,
                    bool copy_upserts, EncodedChunk* out, std::string* sink_key) {
  sink_key->clear();
  const bool upsert = c.kind == Change::Kind::kUpsert;
  const bool copy = upsert && copy_upserts;
  const size_t expected = upsert ? t.columns.size() : t.key.size();
  if (c.values.size() != expected) {
    return Status::Internal("spool record for table " + shape.name + " has " +
                            std::to_string(c.values.size()) + " values, expected " +
                            std::to_string(expected));
  }
  EncodedRow row;
  row.table = c.table;
  row.kind = c.kind;
  row.change = index;
  row.copy = copy;
  row.element = copy ? "" : "[";
  for (size_t i = 0; i < c.values.size(); ++i) {
    const MirrorColumn& col = t.columns[upsert ? i : t.key[i]];
    bool is_key = !upsert;
    for (size_t k : t.key) is_key = is_key || k == i;
    if (is_key && c.values[i].is_null()) {
      out->Park(c.table, ParkEntry(shape, c,
                                   "key column \"" + col.name +
                                       "\" is NULL: PostgreSQL cannot identify the row"));
      sink_key->clear();
      return Status::Ok();
    }
    Result<std::optional<std::string>> text = EncodeValue(c.values[i], col.kind);
    if (!text.ok()) {
      out->Park(c.table, ParkEntry(shape, c,
                                   "column \"" + col.name + "\" (" + col.pg_type +
                                       "): " + text.status().message()));
      sink_key->clear();
      return Status::Ok();
    }
    if (is_key && text->has_value()) {
      *sink_key += std::to_string((*text)->size()) + ":" + **text + ";";
    }
    if (copy) {
      if (i > 0) row.element += '\t';
      if (text->has_value()) {
        AppendCopyField(&row.element, **text);
      } else {
        row.element += "\\N";
      }
      continue;
    }
    if (i > 0) row.element += ",";
    if (text->has_value()) {
      AppendJsonString(&row.element, **text);
    } else {
      row.element += "null";
    }
  }
  if (copy) {
    row.element += "\t" + std::to_string(c.seq) + "\t\\N\t";
    if (c.updates_existing) {
      AppendCopyField(&row.element, kExpectedRowMarker);
    } else {
      row.element += "\\N";
    }
    row.element += '\n';
    out->rows.push_back(std::move(row));
    return Status::Ok();
  }
  row.element += ",\"" + std::to_string(c.seq) + "\"";
  if (upsert && c.updates_existing) row.element += ",1";
  row.element += "]";
  out->rows.push_back(std::move(row));
  return Status::Ok();
}

}  // namespace

Result<EncodedChunk> EncodeChunk(const std::vector<TableShape>& shapes,
                                 const std::vector<const MirrorTable*>& targets,
                                 const std::vector<Change>& changes,
                                 const std::vector<bool>& copy) {
  std::map<std::string, size_t> last;  // row identity -> index in changes
  for (size_t i = 0; i < changes.size(); ++i) {
    const Change& c = changes[i];
    if (c.table >= shapes.size() || c.table >= targets.size() || targets[c.table] == nullptr) {
      return Status::Internal("spool refers to table " + std::to_string(c.table) + " of " +
                              std::to_string(shapes.size()));
    }
    last[RowIdentity(shapes[c.table], c)] = i;
  }
  std::vector<bool> keep(changes.size(), false);
  for (const auto& [id, i] : last) keep[i] = true;
  EncodedChunk out;
  // Two SQLite keys that differ only by storage class (INTEGER 1, TEXT '1')
  // become one key at the sink: the first row is applied, the others parked.
  std::set<std::string> sink_keys;
  for (size_t i = 0; i < changes.size(); ++i) {
    if (!keep[i]) continue;
    const Change& c = changes[i];
    std::string sink_key;
    const bool copy_upserts = c.table < copy.size() && copy[c.table];
    SLUICE_RETURN_IF_ERROR(
        EncodeChange(shapes[c.table], *targets[c.table], c, i, copy_upserts, &out, &sink_key));
    if (sink_key.empty()) continue;  // parked
    if (!sink_keys.insert(std::to_string(c.table) + ":" + sink_key).second) {
      out.rows.pop_back();
      out.Park(
          c.table,
          ParkEntry(
              shapes[c.table], c,
              "its key equals another row's key once converted for PostgreSQL (SQLite keys that "
              "differ only by storage class, such as INTEGER 1 and TEXT '1'): the sink keeps one"));
    }
  }
  return out;
}

std::string ParkEntry(const TableShape& shape, const Change& c, const std::string& reason) {
  std::vector<size_t> key = shape.KeyColumns();
  std::string e = "[";
  AppendJsonString(&e, shape.name);
  e += ",[";
  for (size_t k = 0; k < key.size(); ++k) {
    if (k > 0) e += ",";
    size_t at = c.kind == Change::Kind::kUpsert ? key[k] : k;
    if (at < c.values.size()) AppendValueJson(&e, c.values[at]);
  }
  e += "]," + std::to_string(c.seq) + ",";
  AppendJsonString(&e, reason);
  e += ",{";
  for (size_t i = 0; i < c.values.size(); ++i) {
    size_t col = c.kind == Change::Kind::kUpsert ? i : (i < key.size() ? key[i] : i);
    if (col >= shape.columns.size()) break;
    if (i > 0) e += ",";
    AppendJsonString(&e, shape.columns[col].name);
    e += ":";
    AppendValueJson(&e, c.values[i]);
  }
  e += "}]";
  return e;
}

}  // namespace sluice
