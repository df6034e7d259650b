//! Integration tests: the real `manage` binary, real cargo builds of
//! generated projects, real servers on loopback.

mod browser;
mod cli;
mod devproxy;
mod helpers;
mod runserver;
mod startproject;
