// `sqlx::migrate!()` embeds `migrations/` into the binary; cargo cannot see
// that, so a new or edited migration must trigger a rebuild.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
