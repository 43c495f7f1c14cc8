import APMatrixModel

// A guest's queue devices as TAPQ answers for them (docs/secure-execution.md
// §2–§5): `ap_functions` with the BS bits, and in a Secure Execution guest
// with APSB `se_bind` and `se_associate` on EP11 and accelerator queues
// (a CCA queue has neither since Linux 6.12, and reads illicit).

extension GuestSysfsTree {
    /// The attributes of queue `apqn` (card `type`) that TAPQ answers.
    func queueFunctions(_ apqn: APQN, _ type: AdapterType, _ g: Guest) -> Directory {
        let name = guest
        var d: Directory = [
            "ap_functions": .attribute(.timed { [self] h, now in
                APBusView.functionsText(h.guestQueueFunctions(try running(h), apqn, at: now))
            }),
        ]
        guard g.hasAPSB, type.supportsSEBind else { return d }
        d["se_bind"] = .attribute(.timed({ h, now in try h.seBindText(name, apqn, at: now) + "\n" },
                                         { h, b, now in try Store.guestSEBind(name, apqn, b, in: &h, at: now) }))
        d["se_associate"] = .attribute(.timed({ h, now in try h.seAssociateText(name, apqn, at: now) + "\n" },
                                              { h, b, now in try Store.guestSEAssociate(name, apqn, b, in: &h, at: now) }))
        return d
    }
}

extension Store {
    /// A queue's `se_bind` in a Secure Execution guest: `kstrtobool`
    /// (EINVAL), then a bind (true) or an unbind (false).
    public static func guestSEBind(_ guest: String, _ apqn: APQN, _ input: [UInt8], in host: inout APHost, at now: Uptime) throws(APError) {
        _ = try host.seQueue(guest, apqn, association: false)
        guard case .success(let bind) = KernelParse.kstrtobool(input) else {
            throw APError(.invalidArgument, "se_bind: write 1 to bind the queue or 0 to unbind it (also y/n, t/f, on/off)")
        }
        if bind { try host.seBind(guest, apqn, at: now) } else { try host.seUnbind(guest, apqn, at: now) }
    }

    /// A queue's `se_associate`: only an EP11 queue takes one (EINVAL, before
    /// parsing), then `kstrtouint` base 0 (EINVAL; ERANGE above 32 bits).
    public static func guestSEAssociate(_ guest: String, _ apqn: APQN, _ input: [UInt8], in host: inout APHost,
                                        at now: Uptime) throws(APError) {
        _ = try host.seQueue(guest, apqn, association: true)
        switch KernelParse.kstrtouint(input) {
        case .success(let index): try host.seAssociate(guest, apqn, index: index, at: now)
        case .failure(let e) where e == .outOfRange:
            throw APError(e, "se_associate: the number does not fit in 32 bits; write an association index 0-\(SecureExecution.maxAssociationIndex)")
        case .failure(let e):
            throw APError(e, "se_associate: write an association index 0-\(SecureExecution.maxAssociationIndex): decimal (7), hex (0x7) or octal (07)")
        }
    }
}
