//! (policy: being written.)
