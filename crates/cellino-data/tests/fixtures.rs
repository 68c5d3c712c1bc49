//! Every reader variant against NumPy statistics from `xtask/py/make_image_fixtures.py`.

mod common;

#[test]
fn synthetic_fixtures_match_numpy() {
    let n = common::run_all("synthetic");
    assert!(n >= 40, "only {n} cases");
}

#[test]
fn real_microscopy_files_match_tifffile() {
    let n = common::run_all("real");
    assert_eq!(n, 3);
}
