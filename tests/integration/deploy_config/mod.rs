//! `manage deploy-config`: settings and rendering (`render`), how it writes
//! (`writing`), refusals (`validation`), install.sh and the machine's own
//! directories (`install`), the generated files held to their validators
//! (`generated`), the database, the targets (`targets`, `container`,
//! `kubernetes`) and the operations settings (`ops`).

mod container;
mod database;
mod generated;
mod install;
mod kubernetes;
mod ops;
mod render;
mod targets;
mod validation;
mod writing;
