//! (stdio front: being written.)
