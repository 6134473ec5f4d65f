//! Unit tests of the task rules, against a real registry and store.
