//! Benchmarks live in scripts beside this file.
