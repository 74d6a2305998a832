//! Paper exchange (being written).
