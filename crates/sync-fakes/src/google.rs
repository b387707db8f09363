//! Placeholder: the google fake is being written.
