extension APHost {
    // MARK: inside an SE guest: se_bind and se_associate

    /// The guest binds one of its queues (`echo 1 > se_bind`,
    /// docs/secure-execution.md §2): EIO when TAPQ fails (the queue left its
    /// configuration), EINVAL unless the queue is `unbound` (bound already,
    /// or illicit), EBUSY while the device's state machine is still in its
    /// reset, then BAPQ binds it to this guest. Synchronous: an EP11 queue is
    /// `bound` at once, an accelerator `usable`. The guest kernel forgets its
    /// association index.
    ///
    /// The corresponding kernel function is `se_bind_store` (ap_queue.c, in the guest).
    public mutating func seBind(_ name: String, _ apqn: APQN, at now: Uptime) throws(APError) {
        let (g, _) = try seQueue(name, apqn, association: false)
        let state = try tapq(g, apqn, at: now, "se_bind")
        // An illicit (CCA) queue was refused by `seQueue`: here the queue is bound, or usable.
        guard state.bind == .unbound else {
            throw APError(.invalidArgument,
                          "se_bind: queue \(apqn) is \(state) already (bind state \(state.bind.rawValue)); write 0 to unbind it first")
        }
        try checkIdle(g, apqn, at: now)
        firmware.records[apqn, default: QueueRecord()].seBinding = SEBinding(guest: name, association: nil)
        guests[name]?.bus.seQueues[apqn]?.associationIndex = nil
        events.append(.seQueueChanged(guest: name, apqn: apqn, change: .bound, cause: "se_bind 1"))
    }

    /// The guest unbinds one of its queues (`echo 0 > se_bind`,
    /// docs/secure-execution.md §2): always accepted, whatever the state. The
    /// guest kernel resets the queue with the F bit (RAPQ), which drops the
    /// binding and the association; its state machine runs through its reset again.
    ///
    /// The corresponding kernel function is `se_bind_store` (ap_queue.c, in the guest).
    public mutating func seUnbind(_ name: String, _ apqn: APQN, at now: Uptime) throws(APError) {
        _ = try seQueue(name, apqn, association: false)
        guests[name]?.bus.seQueues[apqn] = SEQueueDevice(associationIndex: nil, idle: now + SecureExecution.resetTime)
        guard firmware.records[apqn]?.seBinding?.guest == name else { return }
        firmware.records[apqn]?.seBinding = nil
        events.append(.seQueueChanged(guest: name, apqn: apqn, change: .unbound, cause: "se_bind 0"))
    }

    /// The guest associates one of its EP11 queues with secret `index`
    /// (`echo N > se_associate`, docs/secure-execution.md §3): EINVAL for an
    /// index above 0xffff, EIO when TAPQ fails, EINVAL unless the queue is
    /// bound and not associated (BS 1), EBUSY while an association is pending
    /// (the state machine in ASSOC_WAIT). Then AAPQ starts the association,
    /// which the firmware completes `associationTime` later: until then
    /// `association pending`, then `associated N` and BS 0. Every index is
    /// accepted (the emulated Ultravisor has a secret at each).
    ///
    /// The corresponding kernel function is `se_associate_store` (ap_queue.c, in the guest).
    public mutating func seAssociate(_ name: String, _ apqn: APQN, index: UInt32, at now: Uptime) throws(APError) {
        let (g, _) = try seQueue(name, apqn, association: true)
        guard index <= SecureExecution.maxAssociationIndex else {
            throw APError(.invalidArgument, "se_associate: \(index) is not an association index 0-\(SecureExecution.maxAssociationIndex)")
        }
        let state = try tapq(g, apqn, at: now, "se_associate")
        guard state.bind == .bound else {
            let hint = state.bind == .unbound ? "bind it first" : "it is associated already; unbind and bind it to associate it again"
            throw APError(.invalidArgument, "se_associate: queue \(apqn) is \(state) (bind state \(state.bind.rawValue)): \(hint)")
        }
        // The kernel's `sm_state != IDLE`: a bound queue's state machine has
        // left its reset (bind waited for it), so only ASSOC_WAIT remains.
        if let pending = state.association {
            throw APError(.resourceBusy, "se_associate: queue \(apqn) is waiting for its association with index \(pending)")
        }
        let i = Int(index)
        firmware.records[apqn]?.seBinding?.association = SEAssociation(index: i, completes: now + SecureExecution.associationTime)
        guests[name]?.bus.seQueues[apqn]?.associationIndex = i
        events.append(.seQueueChanged(guest: name, apqn: apqn, change: .associationRequested(index: i), cause: "se_associate \(i)"))
    }

    /// TAPQ before BAPQ or AAPQ: EIO unless the response code is 0 (the
    /// queue is in the guest's configuration).
    func tapq(_ g: Guest, _ apqn: APQN, at now: Uptime, _ attribute: String) throws(APError) -> SEState {
        guard let s = seState(g, apqn, at: now) else {
            throw APError(.ioError, "\(attribute): queue \(apqn) is not in the guest's AP configuration any more (TAPQ response code 0x01); its next scan removes it")
        }
        return s
    }

    /// EBUSY while the queue device's state machine is still in its reset.
    func checkIdle(_ g: Guest, _ apqn: APQN, at now: Uptime) throws(APError) {
        if let d = g.bus.seQueues[apqn], now < d.idle {
            throw APError(.resourceBusy, "se_bind: queue \(apqn) is still being reset after its creation or unbind (its state machine is idle from \(d.idle) on); try again")
        }
    }

    // MARK: the firmware completes associations

    /// The associations the firmware completes in (`start`, `end`], by
    /// completion time: what `advanceGuestClocks` logs. The guest kernel
    /// notices them by polling TAPQ (`ap_sm_assoc_wait`).
    public func dueAssociations(from start: Uptime, to end: Uptime) -> [(guest: String, apqn: APQN, index: Int)] {
        firmware.records.compactMap { apqn, r -> (Uptime, String, APQN, Int)? in
            guard let b = r.seBinding, let a = b.association, start < a.completes, a.completes <= end else { return nil }
            return (a.completes, b.guest, apqn, a.index)
        }.sorted { ($0.0, $0.2) < ($1.0, $1.2) }.map { ($0.1, $0.2, $0.3) }
    }

    /// Logs the associations completed in (`start`, `end`]. Nothing changes:
    /// what a completed association shows follows from the time.
    mutating func logCompletedAssociations(from start: Uptime, to end: Uptime) {
        for d in dueAssociations(from: start, to: end) {
            events.append(.seQueueChanged(guest: d.guest, apqn: d.apqn, change: .associated(index: d.index),
                                          cause: "the firmware completed the association"))
        }
    }

    // MARK: the host's side

    /// A reset (zeroize) of a queue drops its SE binding and association:
    /// the guest loses the queue's binding, visible after its next scan
    /// (docs/secure-execution.md §6).
    ///
    /// The corresponding kernel function is `vfio_ap_mdev_reset_queue` (ZAPQ, on the host).
    mutating func dropSEBinding(_ apqn: APQN, cause: String) {
        guard let b = firmware.records[apqn]?.seBinding else { return }
        firmware.records[apqn]?.seBinding = nil
        events.append(.seQueueChanged(guest: b.guest, apqn: apqn, change: .lost(association: b.association?.index),
                                      cause: "queue reset: \(cause)"))
    }

    /// Whether the guest may be migrated (SPEC §4 "Live migration"): a
    /// Secure Execution guest may not, whatever devices it has; the reason
    /// is QEMU's text (docs/secure-execution.md §7).
    ///
    /// The corresponding QEMU function is `s390_machine_protect`, which adds
    /// the migration blocker when the guest enters protected mode.
    public func checkMigratable(_ name: String) throws(APError) {
        let g = try guest(name)
        if g.secure {
            throw APError(.notSupported, "guest \(name) is a Secure Execution guest: protected VMs are currently not migratable.")
        }
    }
}
