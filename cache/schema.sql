-- nsa-jit cache schema, version 2.
-- A file is ours when PRAGMA application_id = 0x4E53414A ('NSAJ') and meta holds
-- schema_version. cache/schema.cpp embeds this text (a unit test checks they are equal);
-- migrations from older versions live in cache/schema.cpp as well.

-- key/value facts about the file: schema_version, created_by.
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

-- The tuned winner per (device, kernel family, geometry, topk). `rule` is JSON the
-- dispatcher interprets (per-h_q variant, split rule); the store never looks inside it
-- except to find which variant names it references (export, clear).
CREATE TABLE winners (
  device            TEXT    NOT NULL,  -- e.g. "NVIDIA H100 80GB HBM3 sm_90a"
  family            TEXT    NOT NULL,  -- "sparse_mla_fwd", "topk_select"
  geometry          TEXT    NOT NULL,  -- Geometry::key(), e.g. "d576v512"
  topk              INTEGER NOT NULL,
  rule              TEXT    NOT NULL,
  default_variant   TEXT    NOT NULL,
  template_hash     TEXT    NOT NULL,  -- generator + template identity
  generator_version TEXT    NOT NULL,
  compiler          TEXT    NOT NULL,
  driver            TEXT    NOT NULL,
  arch              TEXT    NOT NULL,  -- "sm_90a", "gfx942"
  tuned_shape       TEXT    NOT NULL,  -- e.g. "h_q=16,32,64,128 s_q=4096 s_kv=32768"
  created_at        TEXT    NOT NULL,  -- UTC ISO-8601 "YYYY-MM-DDTHH:MM:SSZ"
  PRIMARY KEY (device, family, geometry, topk)
);

-- Compiled code objects keyed by the caller's content key (hash of source, options,
-- compiler version and arch): the same key always means the same bytes.
CREATE TABLE binaries (
  key        TEXT    PRIMARY KEY,
  variant    TEXT    NOT NULL,
  arch       TEXT    NOT NULL,
  compiler   TEXT    NOT NULL,
  created_at TEXT    NOT NULL,
  size       INTEGER NOT NULL,
  checksum   TEXT    NOT NULL,  -- FNV-1a 64 hex of `binary`, checked on every read
  binary     BLOB    NOT NULL
);

-- Every candidate's measurement, kept so a tune can be explained later.
CREATE TABLE timings (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  device     TEXT    NOT NULL,
  family     TEXT    NOT NULL,
  geometry   TEXT    NOT NULL,
  topk       INTEGER NOT NULL,
  variant    TEXT    NOT NULL,
  h_q        INTEGER NOT NULL,
  s_q        INTEGER NOT NULL,
  s_kv       INTEGER NOT NULL,
  status     TEXT    NOT NULL CHECK (status IN ('ok', 'wrong', 'compile_failed', 'launch_failed')),
  median_ms  REAL,               -- NULL unless status = 'ok'
  detail     TEXT    NOT NULL,   -- error message or log excerpt
  run_id     TEXT    NOT NULL,   -- groups the candidates of one tune run (since version 2)
  created_at TEXT    NOT NULL
);

CREATE INDEX timings_by_key ON timings (device, family, topk);  -- since version 2
