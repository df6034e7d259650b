//! What `manage deploy-config` writes, run for real: nginx in front of
//! built instances and the three machines in network namespaces (`nginx`),
//! real nginx limits (`ops`), Docker images (`container`) and compose
//! (`compose`), and booted Debian machines under systemd (`systemd`).

mod compose;
mod container;
mod nginx;
mod ops;
mod systemd;
