// Statement text: quoting of hostile identifiers and the exact data statements.
#include "sink/pg_sql.h"

#include <gtest/gtest.h>

#include "sql/control_plane_sql.h"
#include "sql/host_isolation_sql.h"

namespace sluice {
namespace {

TEST(PgSql, QuoteIdentDoublesQuotes) {
  EXPECT_EQ(QuoteIdent("plain"), "\"plain\"");
  EXPECT_EQ(QuoteIdent("a\"b"), "\"a\"\"b\"");
  EXPECT_EQ(QuoteIdent("\"; DROP TABLE x; --"), "\"\"\"; DROP TABLE x; --\"");
  EXPECT_EQ(QuoteIdent("with space"), "\"with space\"");
  EXPECT_EQ(QuoteIdent("user"), "\"user\"");  // reserved word
  EXPECT_EQ(QuoteIdent("CamelCase"), "\"CamelCase\"");
  EXPECT_EQ(QuoteIdent("日本語"), "\"日本語\"");
  EXPECT_EQ(QualifiedName("s\"x", "group"), "\"s\"\"x\".\"group\"");
}

TEST(PgSql, CheckIdentifier) {
  EXPECT_TRUE(CheckIdentifier(std::string(63, 'a'), "table").ok());
  Status st = CheckIdentifier(std::string(64, 'a'), "table");
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(st.message().find("63 bytes"), std::string::npos);
  // 22 three-byte characters = 66 bytes, although only 22 characters.
  std::string wide;
  for (int i = 0; i < 22; ++i) wide += "語";
  EXPECT_FALSE(CheckIdentifier(wide, "column").ok());
  EXPECT_FALSE(CheckIdentifier("", "table").ok());
  EXPECT_FALSE(CheckIdentifier(std::string("a\0b", 3), "table").ok());
  EXPECT_FALSE(CheckIdentifier("\xff", "table").ok());
}

TEST(PgSql, KeyIndexNameStaysWithinLimit) {
  EXPECT_EQ(KeyIndexName("tag"), "tag_sluice_key");
  std::string a = std::string(60, 'a') + "1";
  std::string b = std::string(60, 'a') + "2";
  EXPECT_LE(KeyIndexName(a).size(), kMaxIdentifierBytes);
  EXPECT_NE(KeyIndexName(a), KeyIndexName(b));
  std::string wide;
  for (int i = 0; i < 21; ++i) wide += "語";
  std::string name = KeyIndexName(wide);
  EXPECT_LE(name.size(), kMaxIdentifierBytes);
}

TEST(PgSql, DerivedNamesStayDistinctAndWithinLimit) {
  EXPECT_EQ(AsideName("t", "16384"), "t__old_16384");
  // "a_b"."c" and "a"."b_c" would read alike without the hash of both parts.
  EXPECT_NE(EvictIndexName("a_b", "c"), EvictIndexName("a", "b_c"));
  std::string long_table(63, 't');
  for (const std::string& n :
       {AsideName(long_table, "4294967295"), EvictIndexName(long_table, long_table)}) {
    EXPECT_LE(n.size(), kMaxIdentifierBytes) << n;
  }
  EXPECT_NE(AsideName(long_table, "1"), AsideName(long_table + "x", "1"));
  EXPECT_NE(EvictIndexName(long_table, "a"), EvictIndexName(long_table, "b"));
}

TEST(PgSql, ControlPlaneVersionIsTheOneTheScriptRecords) {
  EXPECT_NE(
      std::string(kControlPlaneSql)
          .find("VALUES ('control-plane', " + std::to_string(kControlPlaneVersion) + ", now())"),
      std::string::npos);
}

TEST(PgSql, HostIsolationVersionIsTheOneTheScriptRecords) {
  EXPECT_NE(
      std::string(kHostIsolationSql)
          .find("VALUES ('host-isolation', " + std::to_string(kHostIsolationVersion) + ", now())"),
      std::string::npos);
}

TEST(PgSql, UpsertForCompositeKey) {
  // Open WebUI's tag: PRIMARY KEY (id, user_id).
  std::vector<SqlColumn> cols = {
      {"id", "text"}, {"name", "text"}, {"user_id", "text"}, {"meta", "jsonb"}};
  EXPECT_EQ(UpsertSql("\"s\".\"tag\"", cols, {0, 2}),
            "INSERT INTO \"s\".\"tag\" AS t (\"id\", \"name\", \"user_id\", \"meta\", "
            "\"_sluice_seq\", \"_sluice_deleted_at\", \"_sluice_updated_at\", "
            "\"_sluice_outside_at\", \"_sluice_base\") SELECT (e->>0)::text, (e->>1)::text, "
            "(e->>2)::text, (e->>3)::jsonb, (e->>4)::bigint, NULL, now(), NULL, "
            "CASE WHEN (e->>5) IS NOT NULL THEN '\"update\"'::jsonb END FROM "
            "jsonb_array_elements($1::jsonb) AS e "
            "ON CONFLICT (\"id\", \"user_id\") DO UPDATE SET \"name\" = EXCLUDED.\"name\", "
            "\"meta\" = EXCLUDED.\"meta\", \"_sluice_seq\" = EXCLUDED.\"_sluice_seq\", "
            "\"_sluice_deleted_at\" = NULL, \"_sluice_updated_at\" = now()");
}

TEST(PgSql, DeleteForCompositeKey) {
  EXPECT_EQ(DeleteSql("\"s\".\"tag\"", "tag", {{"id", "text"}, {"user_id", "text"}}),
            "WITH sluice_agreed AS (UPDATE sync_metadata.outside_deletes AS d SET consumed_at = "
            "now() FROM jsonb_array_elements($1::jsonb) AS e WHERE d.deployment = "
            "current_setting('sluice.writer') AND d.table_name = 'tag' AND d.consumed_at IS NULL "
            "AND d.row_key = jsonb_build_array((e->>0)::text, (e->>1)::text)) "
            "UPDATE \"s\".\"tag\" AS t SET \"_sluice_deleted_at\" = now(), \"_sluice_seq\" = "
            "(e->>2)::bigint, \"_sluice_updated_at\" = now() FROM jsonb_array_elements($1::jsonb) "
            "AS e WHERE t.\"id\" = (e->>0)::text AND t.\"user_id\" = (e->>1)::text AND "
            "(t.\"_sluice_deleted_at\" IS NULL OR t.\"_sluice_outside_at\" IS NOT NULL)");
}

TEST(PgSql, Ddl) {
  EXPECT_EQ(CreateSchemaSql("my\"app"), "CREATE SCHEMA IF NOT EXISTS \"my\"\"app\"");
  EXPECT_EQ(CreateTableSql("s", "t", {{"id", "bigint"}, {"v", "text"}}, {"id"}),
            "CREATE TABLE IF NOT EXISTS \"s\".\"t\" (\"id\" bigint, \"v\" text, "
            "\"_sluice_seq\" bigint NOT NULL, \"_sluice_deleted_at\" timestamptz, "
            "\"_sluice_updated_at\" timestamptz NOT NULL DEFAULT now(), "
            "\"_sluice_outside_at\" timestamptz, \"_sluice_base\" jsonb, PRIMARY KEY (\"id\"))");
  EXPECT_EQ(AddColumnsSql("s", "t", {{"a b", "text"}, {"c", "bigint"}}),
            "ALTER TABLE \"s\".\"t\" ADD COLUMN IF NOT EXISTS \"a b\" text, "
            "ADD COLUMN IF NOT EXISTS \"c\" bigint");
  EXPECT_EQ(CreateKeyIndexSql("s", "t", {"id", "user_id"}),
            "CREATE UNIQUE INDEX IF NOT EXISTS \"t_sluice_key\" ON \"s\".\"t\" (\"id\", "
            "\"user_id\")");
  EXPECT_EQ(TombstoneAllSql("\"s\".\"t\""),
            "UPDATE \"s\".\"t\" SET \"_sluice_deleted_at\" = now(), \"_sluice_updated_at\" = "
            "now() WHERE \"_sluice_deleted_at\" IS NULL");
}

}  // namespace
}  // namespace sluice
