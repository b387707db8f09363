//! Placeholder: the microsoft client is being written against the shared contract in lib.rs.
