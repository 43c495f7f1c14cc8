/// How filtering (SPEC §3 "Filtering") arrived at a shadow CRYCB, so that a
/// tool can say why an assigned APQN is not in a guest.
public struct FilterTrace: Hashable, Sendable {
    /// The step that decided the shadow.
    public enum Step: String, Hashable, Sendable {
        /// Step 1: M.apm ∩ H.apm or M.aqm ∩ H.aqm is empty, S is empty.
        case outsideHost = "outside-host"
        /// Step 2: at least one adapter had all its candidate queues bound to vfio_ap.
        case byAdapter = "by-adapter"
        /// Step 3, the APQI fallback: no adapter was kept, domains were filtered instead.
        case byDomain = "by-domain"
        /// Step 4: neither an adapter nor a domain could be kept, S is empty.
        case nothingBound = "nothing-bound"
    }

    /// M.apm ∩ H.apm, M.aqm ∩ H.aqm, and M.adm.
    public let candidates: Matrix
    public let step: Step
    public let shadow: Matrix
}

extension Profile {
    /// The filtering rule of this profile on inputs read from outside the
    /// model (a real host's sysfs): the assigned matrix `m`, the host AP
    /// configuration `host` (QCI APM/AQM/ADM), and per APID the APQIs whose
    /// queues are bound to vfio_ap. The same rule a guest's open applies.
    public func filter(_ m: Matrix, host: Matrix, boundDomains: (APID) -> Bitmap256<APQI>) -> FilterTrace {
        ProfileRules(profile: self).filterTrace(m, host: host, bound: boundDomains)
    }
}

extension APHost {
    /// How filtering `m` against this host's configuration and bindings goes now.
    public func filterTrace(_ m: Matrix) -> FilterTrace {
        profile.filter(m, host: firmware.hostConfiguration, boundDomains: bus.vfioBoundDomains(of:))
    }
}
