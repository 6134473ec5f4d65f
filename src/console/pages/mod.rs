//! One module per console page; `data` reads what several pages show.

pub mod alarms;
pub mod audit;
pub mod certificates;
mod data;
pub mod devices;
pub mod live;
pub mod mitigations;
pub mod overview;
pub mod profiles;
