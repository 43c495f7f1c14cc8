/// A preview of a posted but unmerged kernel and QEMU series: a named option
/// of the upstream profile, never a change of its defaults (SPEC §3, §6).
public enum Preview: String, Sendable, CaseIterable, Codable {
    /// "s390/vfio-ap: Add live guest migration support" v4 (2026-07-07, as
    /// applied in the 0-day bot's tree) with its QEMU companion "hw/vfio/ap:
    /// Callbacks for migration of guests with pass-through access to AP
    /// devices" (2026-04-09): docs/vfio-ap-migration-preview.md.
    case vfioAPMigration = "vfio-ap-migration"

    /// The profile a preview applies to.
    public var profile: Profile { .upstream }
}
