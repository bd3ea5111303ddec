//! Guest-side glue for ws-edge components.
