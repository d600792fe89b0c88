package manager

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestEnabled(t *testing.T) {
	tests := []struct {
		flags   []string
		want    string
		wantErr bool
	}{
		{[]string{"*"}, strings.Join(sorted(AllControllers), ","), false},
		{[]string{"*", "-garbagecollector"}, "deployment,endpoints,namespace,nodeipam,nodelifecycle,podgc,replicaset", false},
		{[]string{"replicaset", "deployment"}, "deployment,replicaset", false},
		{[]string{"-replicaset"}, "", false},
		{[]string{"*", "cronjob"}, "", true},
	}
	for _, tt := range tests {
		o := DefaultOptions()
		o.Controllers = tt.flags
		got, err := o.Enabled()
		if (err != nil) != tt.wantErr {
			t.Errorf("%v: err %v", tt.flags, err)
			continue
		}
		var names []string
		for n := range got {
			names = append(names, n)
		}
		if s := strings.Join(sorted(names), ","); !tt.wantErr && s != tt.want {
			t.Errorf("%v: enabled %s, want %s", tt.flags, s, tt.want)
		}
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		mutate func(*Options)
		bad    bool
	}{
		{func(*Options) {}, false},
		{func(o *Options) { o.LeaseDuration, o.RenewDeadline = 5*time.Second, 5*time.Second }, true},
		{func(o *Options) { o.LeaderElect = false; o.LeaseDuration = 0 }, false},
		{func(o *Options) { o.NodeMonitorGracePeriod = 0 }, true},
		{func(o *Options) { o.ConcurrentGCSyncs = 0 }, true},
		{func(o *Options) { o.TerminatedPodGCThreshold = 0 }, false},
		{func(o *Options) { o.TerminatedPodGCThreshold = -1 }, true},
		{func(o *Options) { o.PodGCOrphanQuarantine = 0 }, true},
	} {
		o := DefaultOptions()
		tt.mutate(&o)
		if err := o.Validate(); (err != nil) != tt.bad {
			t.Errorf("%s: Validate = %v, want error %v", fmt.Sprint(o.LeaseDuration, o.RenewDeadline, o.NodeMonitorGracePeriod), err, tt.bad)
		}
	}
}

func TestCommandRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--controllers=*,cronjob"},
		{"--log-level=loud"},
		{"--leader-elect-lease-duration=1s", "--leader-elect-renew-deadline=2s"},
		{"--terminated-pod-gc-threshold=-1"},
		{"--pod-gc-orphan-quarantine=0s"},
		{"unexpected-argument"},
	} {
		cmd := NewCommand("controller-manager")
		cmd.SetArgs(args)
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		if err := cmd.Execute(); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}
