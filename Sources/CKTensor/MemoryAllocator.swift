// Which malloc this process runs. `cmkit` links tcmalloc (gperftools), whose per-thread caches serve the
// tensors that the pieces of a batch allocate and free on both cores every step; glibc's one arena (one
// arena on purpose: see Parallel.keepFreedMemory) makes the two cores take turns at one lock and hands each
// core blocks the other one last touched.
#if canImport(Glibc)
import Glibc
#endif

public enum MemoryAllocator {
    /// "tcmalloc" when `malloc` resolves to tcmalloc's (the program linked it), else "glibc" (Linux) or "system".
    public static var current: String {
        #if canImport(Glibc)
        let everywhere = UnsafeMutableRawPointer(bitPattern: 0)          // RTLD_DEFAULT
        if let tc = dlsym(everywhere, "tc_malloc"), dlsym(everywhere, "malloc") == tc { return "tcmalloc" }
        return "glibc"
        #else
        return "system"
        #endif
    }
}
