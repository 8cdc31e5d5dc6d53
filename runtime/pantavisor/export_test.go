package pantavisor

// RunUpdateNoReboot lets the external test package run the update test
// with runtime/pantavisor/updater (which imports this package).
var RunUpdateNoReboot = runUpdateNoReboot

// The daemons of the tests do not listen on the device's ssh port.
func init() { sshAddr = "127.0.0.1:0" }
