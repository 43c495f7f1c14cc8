extension APHost {
    /// The guest puts state into one of its queues (an enqueued request, a
    /// key): a token that must never be seen by anyone but this guest. Only a
    /// queue the guest sees (its view, SPEC §4) can take it (ENODEV, as the
    /// guest's NQAP to an APQN outside its CRYCB fails); the text is 1-256
    /// printable ASCII characters (EINVAL). Every path that takes the queue
    /// away resets it, which drops the state (`reset`).
    public mutating func putGuestState(_ name: String, _ apqn: APQN, _ state: String) throws(APError) {
        guard (1...256).contains(state.utf8.count), state.utf8.allSatisfy({ $0 >= 32 && $0 < 127 }) else {
            throw APError(.invalidArgument, "guest state: write 1-256 printable ASCII characters")
        }
        let view = try guestView(name)
        guard view.queues.contains(apqn) else {
            throw APError(.noSuchDevice,
                          "guest \(name) cannot reach queue \(apqn): it sees \(view.queues.isEmpty ? "no queues" : "queues \(view.queues.map(\.description).joined(separator: " "))") (CRYCB \(view.crycb.summary))")
        }
        records[apqn, default: QueueRecord()].holdsStateOf = name
        records[apqn]?.guestState = state
        events.append(.note("guest \(name): state put into queue \(apqn)"))
    }
}
