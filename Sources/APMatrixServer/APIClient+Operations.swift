import APMatrixModel

/// The control API's operations, one method each (openapi.yaml's operations).
extension APIClient {
    public func host() async throws(APError) -> HostDTO { try await call(.host) }
    public func queues() async throws(APError) -> [QueueDTO] { try await call(.queues) }
    public func mdevs() async throws(APError) -> [MdevDTO] { try await call(.mdevs) }
    public func check() async throws(APError) -> CheckDTO { try await call(.check) }

    /// The event log, only the entries after `sequence` when given.
    public func events(after sequence: Int = 0) async throws(APError) -> [EventDTO] {
        try await call(.events, query: "?after=\(sequence)")
    }

    public func readSysfs(_ path: String) async throws(APError) -> String {
        let r: SysfsReadResponse = try await call(.readSysfs, query: "?path=\(path.percentEncoded)")
        return r.value
    }

    public func writeSysfs(_ path: String, _ value: String) async throws(APError) {
        let _: Empty = try await call(.writeSysfs, json: SysfsWriteRequest(path: path, value: value))
    }

    // MARK: guests

    public func guests() async throws(APError) -> [GuestDTO] { try await call(.guests) }

    public func guest(_ name: String) async throws(APError) -> GuestDTO { try await call(.guest, ["name": name]) }

    public func startGuest(_ start: StartGuestRequest) async throws(APError) -> GuestDTO {
        try await call(.startGuest, json: start)
    }

    public func stopGuest(_ name: String) async throws(APError) {
        let _: Empty = try await call(.stopGuest, ["name": name])
    }

    public func mountGuestTree(_ name: String, dir: String) async throws(APError) -> GuestDTO {
        try await call(.mountGuestTree, ["name": name], json: GuestMountRequest(dir: dir))
    }

    public func unmountGuestTree(_ name: String) async throws(APError) -> GuestDTO {
        try await call(.unmountGuestTree, ["name": name])
    }

    public func putHeldState(_ name: String, _ state: HeldStateRequest) async throws(APError) -> GuestDTO {
        try await call(.putHeldState, ["name": name], json: state)
    }

    /// `virsh attach-device` (or `detach-device`) with libvirt hostdev XML.
    public func hostdev(_ name: String, xml: [UInt8], detach: Bool) async throws(APError) -> GuestDTO {
        try decode(try await send(detach ? .detachHostdev : .attachHostdev, ["name": name], body: xml, contentType: "application/xml"))
    }

    public func migrate(_ name: String, _ request: MigrateRequest) async throws(APError) {
        let _: Empty = try await call(.migrate, ["name": name], json: request)
    }

    // MARK: firmware

    public func addAdapter(_ adapter: AdapterRequest) async throws(APError) {
        let _: Empty = try await call(.addAdapter, json: adapter)
    }

    public func removeAdapter(_ id: APID) async throws(APError) {
        let _: Empty = try await call(.removeAdapter, ["id": String(id.value)])
    }

    public func addDomain(_ kind: DomainKind, _ id: APQI) async throws(APError) {
        let _: Empty = try await call(.addDomain(kind), json: DomainRequest(id: id.value))
    }

    public func removeDomain(_ kind: DomainKind, _ id: APQI) async throws(APError) {
        let _: Empty = try await call(.removeDomain(kind), ["id": String(id.value)])
    }
}
