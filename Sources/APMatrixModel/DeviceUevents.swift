// The driver core's uevents for devices that come, go, bind and unbind
// (docs/udev-libvirt.md §2.4): each change of a card, queue or mdev device
// goes through one of these, which sends what `device_add`,
// `driver_bound`, `__device_release_driver` and `device_del` send, with
// the variables the device's `uevent` file shows (`ueventEnvironment`).
extension APHost {
    /// Sends a driver-core event for device `d` with environment `env`.
    /// `add` comes before the probe, `unbind` and `remove` after the driver
    /// let go, so none of them carries `DRIVER=` (`bind` and `change` do);
    /// `unbind` also drops `MODALIAS=` (`zap_modalias_env`).
    ///
    /// The corresponding kernel function is `kobject_uevent_env`.
    mutating func sendUevent(_ action: UeventAction, _ d: KernelDevice, _ env: UeventEnvironment?) {
        guard !booting, let env, d.sendsUevents else { return }
        var properties = env.properties
        if action != .bind && action != .change { properties.removeAll { $0.hasPrefix("DRIVER=") } }
        if action == .unbind { properties.removeAll { $0.hasPrefix("MODALIAS=") } }
        events.append(.uevent(Uevent(action: action, devpath: d.devpath, subsystem: env.subsystem, properties: properties)))
    }

    /// A `change` event of device `d` as it is now, with `keys` before the
    /// device's own variables (`kobject_uevent_env`'s `envp_ext`), where the
    /// profile's kernel sends it (`sendsStateUevents`).
    ///
    /// The corresponding kernel functions are `ap_send_config_uevent` and `ap_send_online_uevent`.
    mutating func sendStateUevent(_ d: KernelDevice, _ keys: [String]) {
        guard rules.sendsStateUevents, !booting, let env = ueventEnvironment(d) else { return }
        sendUevent(.change, d, UeventEnvironment(subsystem: env.subsystem, properties: keys + env.properties, driver: env.driver))
    }

    /// Sends a driver-core event for device `d` as it is now.
    mutating func sendUevent(_ action: UeventAction, _ d: KernelDevice) {
        guard !booting else { return }
        sendUevent(action, d, ueventEnvironment(d))
    }

    // MARK: queue devices

    /// Creates a queue device and binds it to the driver the masks (or its
    /// override) give it: `add`, then `bind`.
    ///
    /// The corresponding kernel functions are `ap_queue_create`, `device_add` and `ap_device_probe`.
    mutating func addQueueDevice(_ apqn: APQN) {
        bus.queues[apqn] = QueueDevice(driver: nil)
        sendUevent(.add, .queue(apqn))
        rebind(apqn, to: bus.fittingDriver(apqn))
    }

    /// Removes a queue device, announced with its card's type in `fw` (the
    /// firmware before the change that took it away): `unbind` if it was
    /// bound, then `remove`.
    ///
    /// The corresponding kernel function is `device_unregister`.
    mutating func removeQueueDevice(_ apqn: APQN, announcedWith fw: Firmware) {
        let env = ueventEnvironment(.queue(apqn), in: fw)
        if bus.queues[apqn]?.driver != nil {
            bus.setDriver(apqn, nil)
            sendUevent(.unbind, .queue(apqn), env)
        }
        sendUevent(.remove, .queue(apqn), env)
        bus.queues[apqn] = nil
    }

    /// Sets a queue device's driver as the driver core does: `unbind` from
    /// the driver it leaves, then `bind` to the one it gets.
    ///
    /// The corresponding kernel functions are `device_release_driver` and `driver_probe_device`.
    mutating func rebind(_ apqn: APQN, to driver: QueueDriver?) {
        let old = bus.queues[apqn]?.driver
        guard old != driver else { return }
        if old != nil {
            bus.setDriver(apqn, nil)
            sendUevent(.unbind, .queue(apqn))
        }
        guard driver != nil else { return }
        bus.setDriver(apqn, driver)
        sendUevent(.bind, .queue(apqn))
    }

    // MARK: card devices

    /// Creates a card device bound to `cex4card`: `add`, then `bind`.
    ///
    /// The corresponding kernel functions are `ap_card_create`, `device_add` and `ap_device_probe`.
    mutating func addCardDevice(_ id: APID) {
        bus.cards[id] = Card(bound: false)
        sendUevent(.add, .card(id))
        setCardBound(id, true)
    }

    /// Removes a card device (its queues went first), announced with its
    /// type in `fw`: `unbind` if it was bound, then `remove`.
    ///
    /// The corresponding kernel function is `device_unregister`.
    mutating func removeCardDevice(_ id: APID, announcedWith fw: Firmware) {
        let env = ueventEnvironment(.card(id), in: fw)
        if bus.cards[id]?.bound == true {
            bus.cards[id]?.bound = false
            sendUevent(.unbind, .card(id), env)
        }
        sendUevent(.remove, .card(id), env)
        bus.cards[id] = nil
    }

    /// Binds a card device to `cex4card` or unbinds it: `bind` or `unbind`.
    mutating func setCardBound(_ id: APID, _ bound: Bool) {
        bus.cards[id]?.bound = bound
        sendUevent(bound ? .bind : .unbind, .card(id))
    }
}
