//! How this process takes memory from the system for tensors.
//!
//! libtorch allocates every CPU tensor with glibc's malloc, which maps blocks above its
//! threshold (at most 32 MB) straight from the kernel and unmaps them when freed, and
//! returns the top of its heap to the kernel whenever enough is free there. A training
//! step frees and reallocates the same activations every step, so each step faulted in
//! fresh zeroed pages by the hundred thousand (at 128×128, batch 64: about 570,000 minor
//! faults and a quarter of the step's time). Keeping freed memory in the heap, as
//! jemalloc or tcmalloc would, makes later steps reuse it; the process keeps its peak
//! heap, which training reaches in its first step anyway.

/// The environment variable through which glibc takes malloc settings; where it sets
/// any, they are the user's choice and are left as they are.
const GLIBC_TUNABLES_ENV: &str = "GLIBC_TUNABLES";

/// What [`keep_freed_memory`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MallocSetting {
    /// Freed memory stays in the heap for reuse.
    KeepFreed,
    /// The user's `GLIBC_TUNABLES` set malloc's behaviour; left alone.
    UserTunables,
    /// Not glibc, or glibc refused: the allocator's defaults.
    Default,
}

impl MallocSetting {
    /// How `vaelab info` says it.
    pub fn describe(self) -> &'static str {
        match self {
            Self::KeepFreed => "freed memory kept for reuse (no separate mappings, no trimming)",
            Self::UserTunables => "as GLIBC_TUNABLES sets it",
            Self::Default => "the allocator's defaults",
        }
    }
}

static APPLIED: std::sync::OnceLock<MallocSetting> = std::sync::OnceLock::new();

/// What [`keep_freed_memory`] did in this process ([`MallocSetting::Default`] if it was
/// not called).
pub fn setting() -> MallocSetting {
    APPLIED.get().copied().unwrap_or(MallocSetting::Default)
}

/// Makes malloc serve every block from its heap and never give freed memory back to the
/// kernel, unless `GLIBC_TUNABLES` already sets malloc's behaviour. Call it once, first
/// thing in the process, before any thread allocates. (A thread other than the main one
/// still gets blocks over 64 MB mapped: its arena's heaps are at most that large.
/// Training runs on the main thread.)
pub fn keep_freed_memory() -> MallocSetting {
    *APPLIED.get_or_init(|| {
        if user_sets_malloc() {
            MallocSetting::UserTunables
        } else {
            set_malloc_options()
        }
    })
}

/// Whether `GLIBC_TUNABLES` sets any of malloc's values.
fn user_sets_malloc() -> bool {
    std::env::var(GLIBC_TUNABLES_ENV).is_ok_and(|t| t.contains("glibc.malloc."))
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_malloc_options() -> MallocSetting {
    // SAFETY: mallopt only changes malloc's parameters; it is called before other
    // threads allocate. -1 for M_TRIM_THRESHOLD disables trimming (mallopt(3)).
    let applied = unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0) == 1 && libc::mallopt(libc::M_TRIM_THRESHOLD, -1) == 1
    };
    if applied {
        MallocSetting::KeepFreed
    } else {
        MallocSetting::Default
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_malloc_options() -> MallocSetting {
    MallocSetting::Default
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    #[test]
    fn a_large_tensor_comes_from_the_heap_and_stays_there_when_freed() {
        // nextest runs each test in its own process, so this one sets malloc for itself,
        // whatever GLIBC_TUNABLES says (`it::run::info_reports_versions_and_devices`
        // checks that a user's tunables are left in charge).
        assert_eq!(set_malloc_options(), MallocSetting::KeepFreed);
        // SAFETY: mallinfo2 only reads malloc's counters.
        let info = || unsafe { libc::mallinfo2() };
        // Above glibc's largest mmap threshold (32 MB), so mapped by default, and below
        // the 64 MB heaps of the arenas of threads other than the main one (this test's).
        let bytes = 48 << 20;
        let mapped_before = info().hblkhd;
        let tensor = tch::Tensor::ones([bytes / 4], (tch::Kind::Float, tch::Device::Cpu));
        assert_eq!(
            info().hblkhd,
            mapped_before,
            "a 48 MB tensor was mapped apart from the heap"
        );
        assert!(info().uordblks >= bytes as usize);
        drop(tensor);
        assert!(
            info().fordblks >= bytes as usize,
            "the freed 48 MB went back to the kernel"
        );
    }
}
