//! (audit: being written.)
