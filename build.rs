// Templates are embedded with `include_dir!`, which does not see files that
// are added or removed; tell cargo to rebuild when anything under them changes.
fn main() {
    println!("cargo:rerun-if-changed=templates");
}
