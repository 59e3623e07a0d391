//! Storage of events: the Store trait and the embedded SQLite backend.
