//! (config: being written.)
