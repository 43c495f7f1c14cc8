import SystemPackage

/// Every rule on which the kernel profiles differ, in one place
/// (kernel-reference §9). The rest of the model asks these and never
/// looks at the profile itself.
struct ProfileRules {
    let profile: Profile

    /// A mask change that would newly reserve an assigned APQN
    /// (seed: `EADDRINUSE`; kernel-reference §9.1).
    var maskInUseErrno: Errno {
        switch profile {
        case .seed: return .addressInUse
        }
    }

    /// `create` when no instance is left (seed era: `EPERM`; §9.17).
    var instancesExhaustedErrno: Errno {
        switch profile {
        case .seed: return .notPermitted
        }
    }

    /// The log line for an APQN that a mask change or an assignment would take
    /// from `owner` (the seed's text, no prefix; SPEC §3).
    func inUseLine(_ apqn: APQN, owner: String) -> String {
        switch profile {
        case .seed: return "Userspace may not re-assign queue \(apqn) already assigned to \(owner)"
        }
    }

    /// The shadow CRYCB a guest gets when it opens the mdev (SPEC §3
    /// "Filtering"; seed `vfio_ap_mdev_config_shadow_apcb`, doc semantics).
    func filter(_ m: Matrix, host: APHost) -> Matrix {
        filterTrace(m, host: host.hostConfiguration, bound: host.vfioBoundDomains(of:)).shadow
    }

    /// The filtering rule and how it got there, from its inputs alone: H and,
    /// per APID, the APQIs bound to vfio_ap. By APID first, then the APQI
    /// fallback; S.adm = M.adm unfiltered.
    func filterTrace(_ m: Matrix, host h: Matrix, bound: (APID) -> Bitmap256) -> FilterTrace {
        switch profile {
        case .seed:
            let candidates = Matrix(apm: m.apm & h.apm, aqm: m.aqm & h.aqm, adm: m.adm)
            let apids = candidates.apm, apqis = candidates.aqm
            var s = Matrix(adm: m.adm)
            guard !apids.isEmpty, !apqis.isEmpty else { return FilterTrace(candidates: candidates, step: .outsideHost, shadow: s) }
            let keptAdapters = Bitmap256(apids.filter { apqis.isSubset(of: bound($0)) })
            if !keptAdapters.isEmpty {
                s.apm = keptAdapters
                s.aqm = apqis
                return FilterTrace(candidates: candidates, step: .byAdapter, shadow: s)
            }
            let keptDomains = Bitmap256(apqis.filter { q in apids.allSatisfy { bound($0).contains(q) } })
            guard !keptDomains.isEmpty else { return FilterTrace(candidates: candidates, step: .nothingBound, shadow: s) }
            s.apm = apids
            s.aqm = keptDomains
            return FilterTrace(candidates: candidates, step: .byDomain, shadow: s)
        }
    }

    /// Hot plug of adapter `a` into a running guest (SPEC §3 "Hot plug", seed
    /// "Hot plug support", all-or-nothing). Returns the new shadow.
    func plugAdapter(_ a: APID, into s: Matrix, assigned m: Matrix, host: APHost) -> Matrix {
        switch profile {
        case .seed:
            let h = host.hostConfiguration
            guard h.apm.contains(a), !s.apm.contains(a) else { return s }
            let bound = host.vfioBoundDomains(of: a)
            var out = s
            if s.aqm.isEmpty {
                let domains = m.aqm & h.aqm
                guard !domains.isEmpty, domains.isSubset(of: bound) else { return s }
                out.apm.insert(a)
                out.aqm = domains
            } else if s.aqm.isSubset(of: bound) {
                out.apm.insert(a)
            }
            return out
        }
    }

    /// Hot plug of usage domain `q`: the adapter rule with the axes swapped.
    func plugDomain(_ q: APQI, into s: Matrix, assigned m: Matrix, host: APHost) -> Matrix {
        switch profile {
        case .seed:
            let h = host.hostConfiguration
            guard h.aqm.contains(q), !s.aqm.contains(q) else { return s }
            var out = s
            if s.apm.isEmpty {
                let adapters = m.apm & h.apm
                guard !adapters.isEmpty, adapters.allSatisfy({ host.isBoundToVfio($0, q) }) else { return s }
                out.aqm.insert(q)
                out.apm = adapters
            } else if s.apm.allSatisfy({ host.isBoundToVfio($0, q) }) {
                out.aqm.insert(q)
            }
            return out
        }
    }

    /// The shadow after ids leave it (unassign, unbind, firmware removal):
    /// if S.apm or S.aqm becomes empty, both become empty (seed unassign).
    func unplug(adapters: Bitmap256 = Bitmap256(), domains: Bitmap256 = Bitmap256(), from s: Matrix) -> Matrix {
        switch profile {
        case .seed:
            var out = s
            out.apm = out.apm.subtracting(adapters)
            out.aqm = out.aqm.subtracting(domains)
            if out.apm.isEmpty || out.aqm.isEmpty {
                out.apm = Bitmap256()
                out.aqm = Bitmap256()
            }
            return out
        }
    }
}
