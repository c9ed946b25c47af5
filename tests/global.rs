//! The global bakery: its own test binary, since it is one per process
//! (rayon-core's `double_init_fail` is one too). One test, so that the
//! order of the steps is fixed.

use bakehouse::{Baker, Bakery, BuildError};

#[test]
fn build_global_configures_it_once_and_the_free_functions_use_it() {
    Bakery::builder()
        .bakers(3)
        .baker_name(|i| format!("global-{i}"))
        .build_global()
        .expect("the first build_global wins");

    // A second configuration is an error, not a panic.
    let again = Bakery::builder().bakers(2).build_global();
    assert!(matches!(again, Err(BuildError::GlobalAlreadyStarted)));
    assert_eq!(
        again.unwrap_err().to_string(),
        "the global bakery was already started"
    );

    let global = Bakery::global();
    assert_eq!(global.bakers(), 3);
    assert!(std::ptr::eq(global, Bakery::global()));

    // Off any baker, the free functions use the global bakery.
    let name = bakehouse::submit(|| Baker::current().unwrap().name().to_string())
        .join()
        .unwrap();
    assert!(name.starts_with("global-"), "{name}");
    let (a, b) = bakehouse::join(
        || Baker::current().map(|b| b.name().starts_with("global-")),
        || 2,
    );
    assert_eq!((a, b), (Some(true), 2));
    let mut loaves = [1, 2, 3];
    bakehouse::scope(|s| {
        for loaf in &mut loaves {
            s.submit(move || *loaf *= 2);
        }
    });
    assert_eq!(loaves, [2, 4, 6]);

    // On another bakery's baker, they use that bakery.
    let other = Bakery::builder()
        .bakers(1)
        .baker_name(|_| "local".into())
        .build()
        .unwrap();
    let names = other.install(|| {
        let submitted = bakehouse::submit(|| Baker::current().unwrap().name().to_string());
        let (joined, _) = bakehouse::join(|| Baker::current().unwrap().name().to_string(), || ());
        let scoped = bakehouse::scope(|s| {
            s.submit(|| Baker::current().unwrap().name().to_string())
                .join()
                .unwrap()
        });
        (submitted.join().unwrap(), joined, scoped)
    });
    assert_eq!(names, ("local".into(), "local".into(), "local".into()));

    // Still one global bakery after all that.
    assert!(matches!(
        Bakery::builder().build_global(),
        Err(BuildError::GlobalAlreadyStarted)
    ));
}
