import APMatrixModel
import APMatrixTools
import ArgumentParser
import Glibc

/// How a sysfs-only command finds its tree (SPEC §6): `--sysfs DIR`, else
/// `$APMATRIX_SYSFS`, else `/sys`. These commands never talk to the daemon,
/// so they work on a real s390 host as well as on a mount.
struct SysfsOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The sysfs tree to read: a mount of apmatrix serve, or /sys (default: $APMATRIX_SYSFS, else /sys).",
                               valueName: "DIR"))
    var sysfs: String?

    var directory: SysfsDirectory {
        SysfsDirectory(sysfs ?? getenv("APMATRIX_SYSFS").map { String(cString: $0) } ?? "/sys")
    }

    func snapshot() throws -> Snapshot {
        do throws(SnapshotError) { return try Snapshot.read(directory) } catch { throw Failure(error.description) }
    }
}

/// An mdev of the snapshot.
func mdev(_ uuid: MdevUUID, in s: Snapshot) throws -> MdevInfo {
    guard let m = s.mdev(uuid) else {
        throw Failure("ENODEV: no mdev \(uuid) under \(s.root)/devices/vfio_ap/matrix (apmatrix ls or ls that directory)")
    }
    return m
}
