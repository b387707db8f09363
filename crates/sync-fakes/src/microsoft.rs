//! Placeholder: the microsoft fake is being written.
