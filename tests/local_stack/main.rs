//! End to end through HTTP on the local stack: the consented flow, bad input, and what lies on
//! disk.

#[macro_use]
mod support;

mod abuse;
mod admin;
mod agent;
mod agent_api;
mod at_rest;
mod aws;
mod bad_input;
mod browser;
mod conformance;
mod crash;
mod durability;
mod endpoints;
mod flow;
mod info;
mod isolation;
mod leaks;
mod optouts;
mod page;
mod queries;
mod routes;
mod sandbox;
mod staged;
mod subjects;
mod tamper;
mod world;
mod writeback;
