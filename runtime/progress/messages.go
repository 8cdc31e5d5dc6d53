package progress

import "fmt"

// Messages of NEW.
const (
	MsgNotInstalled = "Update not yet installed"
	MsgReady        = "Update ready to be run"
)

// Messages of INPROGRESS.
const (
	MsgTrying        = "Trying new revision"
	MsgRebooting     = "Rebooting"
	MsgTransitioning = "Transitioning to new revision without rebooting"
)

// Messages of TESTING.
const (
	// MsgTestingReboot is used after a reboot transition.
	MsgTestingReboot = "Awaiting to set rollback point if update is stable"
	// MsgTestingNoReboot is used after a non-reboot transition.
	MsgTestingNoReboot = "Awaiting to see if update is stable"
	// MsgWaitingStable is used while a container with stable_timeout is not yet stable.
	MsgWaitingStable = "Waiting for all containers to become stable"
)

// Messages of the final statuses UPDATED and DONE.
const (
	MsgUpdated = "Update finished, revision not set as rollback point"
	MsgDone    = "Update finished, revision set as rollback point"
	MsgFactory = "Factory revision"
)

// Messages of WONTGO and ERROR.
const (
	MsgMaxRetries         = "Max update processing retries reached"
	MsgMaxDownloadRetries = "Max download update retries reached"
	MsgStateNotFound      = "State JSON not found"
	MsgStateBadFormat     = "State JSON has bad format"
	MsgInternal           = "Internal error"
	MsgObjectValidation   = "Object validation went wrong"
	MsgHubNotReachable    = "Hub not reachable"
	MsgHubNotStable       = "Hub communication not stable"
	MsgGoalNotReached     = "Status goal not reached"
	MsgContainerFailed    = "A container could not be started"
	MsgUnexpectedRollback = "Unexpected rollback"
	// MsgAborted and MsgStale are defined upstream but never written.
	MsgAborted = "Update aborted"
	MsgStale   = "Stale revision"
	// MsgApplyNeedsReboot is ours: LOCAL_APPLY of a revision that
	// cannot be run without a reboot (upstream has no LOCAL_APPLY).
	MsgApplyNeedsReboot = "Revision needs a reboot: use LOCAL_RUN"
)

// Signature verification messages (spec §9), used with WONTGO and ERROR.
const (
	MsgSigFailed     = "Signature validation failed"
	MsgSigNotCovered = "State not fully covered by signatures"
	MsgUnknownError  = "Unknown error"
)

// Format strings of the parameterised messages; prefer the functions below.
const (
	FmtRetried       = "Retried %d of %d"
	FmtMetadataRetry = "Downloading update metadata, retry %d of %d"
	FmtDownloadRetry = "Downloading update artifacts, retry %d of %d"
	FmtSpace         = "Space required %d B, available %d B"
)

// Retried is the QUEUED message "Retried X of Y".
func Retried(x, y int) string { return fmt.Sprintf(FmtRetried, x, y) }

// MetadataRetry is the QUEUED message "Downloading update metadata, retry X of Y".
func MetadataRetry(x, y int) string { return fmt.Sprintf(FmtMetadataRetry, x, y) }

// DownloadRetry is the DOWNLOADING message "Downloading update artifacts, retry X of Y".
func DownloadRetry(x, y int) string { return fmt.Sprintf(FmtDownloadRetry, x, y) }

// Space is the WONTGO message "Space required X B, available Y B".
func Space(required, available int64) string { return fmt.Sprintf(FmtSpace, required, available) }
