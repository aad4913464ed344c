//! Process setup: the command line, configuration, startup and the state
//! every handler shares.

pub mod cli;
pub mod config;
pub mod open_files;
pub mod startup;
pub mod state;
