//! tessera: a JWT authentication microservice.

pub mod access_log;
pub mod accounts;
pub mod auth;
pub mod blocking;
pub mod cli;
pub mod client;
pub mod config;
pub mod db;
pub mod domain;
pub mod envelope;
pub mod error;
pub mod json_body;
pub mod metrics;
pub mod open_files;
pub mod rate_limit;
pub mod request_id;
pub mod routes;
pub mod startup;
pub mod state;
