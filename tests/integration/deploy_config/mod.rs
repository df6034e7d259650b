//! `manage deploy-config`: settings and rendering (`render`), refusals
//! (`validation`), the generated files held to their validators
//! (`generated`), the database, the targets (`targets`, `container`,
//! `kubernetes`) and the operations settings (`ops`).

mod container;
mod database;
mod generated;
mod kubernetes;
mod ops;
mod render;
mod targets;
mod validation;
