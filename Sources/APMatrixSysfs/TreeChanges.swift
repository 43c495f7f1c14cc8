import APMatrixModel

extension SysfsTree {
    /// The names of the host tree's entries that `changes` removed, or
    /// whose kind or attributes (a symlink's target) it changed: a cache of
    /// the tree (the kernel's dentries over FUSE) must forget every entry
    /// of one of these names, with all that lies below it. New entries need
    /// nothing: a cache never keeps what it did not find.
    ///
    /// The tree's shape follows from the devices alone: which cards, queues
    /// and mdevs exist, which driver each card and queue has (`driver`,
    /// `online`, `status` and the links in `bus/ap/drivers/…` come and go
    /// with it), and each mdev's iommu group (`kernel/iommu_groups/N`).
    /// Everything else (masks, assignments, guests, counters) changes only
    /// what an attribute reads, which is rendered at every open.
    /// The kernel's counterpart is `device_del` removing a device's kobject
    /// and its sysfs directory, and `sysfs_remove_link` for the driver links.
    public static func changedEntryNames(_ changes: HostChanges, in host: APHost) -> Set<String> {
        var names = Set<String>()
        for case let (id, before?) in changes.cards where host.bus.cards[id]?.bound != before.bound {
            names.insert(id.cardName)
        }
        for case let (apqn, before?) in changes.queues where host.bus.queues[apqn].map({ $0.driver != before.driver }) ?? true {
            names.insert(apqn.description)
        }
        for case let (uuid, before?) in changes.mdevs where host.vfio.mdevs[uuid] == nil {
            names.insert(uuid.description)
            names.insert(String(before.iommuGroup))
        }
        return names
    }
}
