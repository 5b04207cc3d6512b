//! Differential testing of AiDb against RocksDB. Everything lives in
//! `tests/`: the `RocksDbOracle` adapter and the differential suite.
