package ctl

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/version"
	"sigs.k8s.io/yaml"

	"github.com/minik8s/minik8s/ctl/printer"
)

func newVersionCommand(e *env) *cobra.Command {
	var client bool
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the client and server version information",
		Long:  "Print the version of ctl and, unless --client is given, of the API server it is configured for.",
		Example: examples(`
# both versions
ctl version

# only ctl's, without contacting a server
ctl version --client

# as YAML
ctl version -o yaml`),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "" && output != "json" && output != "yaml" {
				return usageError(cmd, "--output must be json or yaml, not %q", output)
			}
			clientInfo := version.Info{GitVersion: Version, Major: "1", Minor: "32"}
			var serverInfo *version.Info
			var serverErr error
			if !client {
				serverInfo, serverErr = e.serverVersion(cmd)
			}
			out := e.streams.Out
			switch output {
			case "":
				fmt.Fprintf(out, "Client Version: %s\n", clientInfo.GitVersion)
				if serverInfo != nil {
					fmt.Fprintf(out, "Server Version: %s\n", serverInfo.GitVersion)
				}
			default:
				doc := map[string]any{"clientVersion": clientInfo}
				if serverInfo != nil {
					doc["serverVersion"] = serverInfo
				}
				var data []byte
				var err error
				if output == "json" {
					data, err = json.MarshalIndent(doc, "", "  ")
					data = append(data, '\n')
				} else {
					data, err = yaml.Marshal(doc)
				}
				if err != nil {
					return err
				}
				out.Write(data)
			}
			return serverErr
		},
	}
	cmd.Flags().BoolVar(&client, "client", false, "Only print the client version; do not contact the server")
	cmd.Flags().StringVarP(&output, "output", "o", "", "Output format: json or yaml")
	return cmd
}

func (e *env) serverVersion(cmd *cobra.Command) (*version.Info, error) {
	rc, err := e.client()
	if err != nil {
		return nil, err
	}
	body, err := rc.Get().AbsPath("/version").Do(cmd.Context()).Raw()
	if err != nil {
		return nil, err
	}
	var v version.Info
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, fmt.Errorf("decoding /version: %w", err)
	}
	return &v, nil
}

func newClusterInfoCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "cluster-info",
		Short: "Display the address of the control plane and whether it is ready",
		Long: `Display the address of the API server this kubeconfig context points at, its
version and readiness, and the cluster services (objects labelled
kubernetes.io/cluster-service=true).`,
		Example: examples(`
# where is my cluster?
ctl cluster-info

# ... for another context
ctl cluster-info --context lab`),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := e.serverVersion(cmd)
			if err != nil {
				return err
			}
			out := e.streams.Out
			fmt.Fprintf(out, "minik8s control plane (%s) is running at %s\n", v.GitVersion, e.server())
			body, rerr := e.rc.Get().AbsPath("/readyz").Do(cmd.Context()).Raw()
			if rerr != nil {
				fmt.Fprintf(out, "The API server is NOT ready: %s\n", strings.TrimSpace(string(body)))
			}
			mp, err := e.discovery(cmd.Context())
			if err != nil {
				return err
			}
			if svc, err := mp.resource("services"); err == nil {
				items, _, err := e.listObjects(cmd.Context(), svc, "", metav1ListLabel("kubernetes.io/cluster-service=true"))
				if err == nil {
					for _, it := range items {
						fmt.Fprintf(out, "%s is running at %s/api/v1/namespaces/%s/services/%s/proxy\n",
							it.GetName(), e.server(), it.GetNamespace(), it.GetName())
					}
				}
			}
			fmt.Fprintln(out, "\nTo see every resource type the server offers, use 'ctl api-resources'.")
			return nil
		},
	}
}

type apiResourcesOptions struct {
	output     string
	noHeaders  bool
	apiGroup   string
	namespaced bool
	verbs      []string
	sortBy     string
}

func newAPIResourcesCommand(e *env) *cobra.Command {
	o := &apiResourcesOptions{}
	cmd := &cobra.Command{
		Use:   "api-resources",
		Short: "Print the supported API resources on the server",
		Long: `Print the resource types the server serves, from its discovery documents: the
names ctl accepts (plural, short names), their API version, whether they live
in namespaces, and their kind.`,
		Example: examples(`
# every resource type
ctl api-resources

# with their verbs, namespaced ones of the apps group only
ctl api-resources -o wide --namespaced=true --api-group=apps

# just the names, for scripts
ctl api-resources -o name --verbs=list,get`),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.output != "" && o.output != "wide" && o.output != "name" {
				return usageError(cmd, "--output must be wide or name, not %q", o.output)
			}
			if o.sortBy != "" && o.sortBy != "name" && o.sortBy != "kind" {
				return usageError(cmd, "--sort-by must be name or kind, not %q", o.sortBy)
			}
			mp, err := e.discovery(cmd.Context())
			if err != nil {
				return err
			}
			var ms []*mapping
			for _, m := range mp.all {
				if cmd.Flags().Changed("api-group") && m.Group != o.apiGroup {
					continue
				}
				if cmd.Flags().Changed("namespaced") && m.Namespaced != o.namespaced {
					continue
				}
				ok := true
				for _, v := range o.verbs {
					ok = ok && m.hasVerb(v)
				}
				if ok {
					ms = append(ms, m)
				}
			}
			switch o.sortBy {
			case "name":
				sort.SliceStable(ms, func(i, j int) bool { return ms[i].Resource < ms[j].Resource })
			case "kind":
				sort.SliceStable(ms, func(i, j int) bool { return ms[i].Kind < ms[j].Kind })
			default:
				// Discovery order groups by API group (core first);
				// within a group, by name.
				sort.SliceStable(ms, func(i, j int) bool {
					if ms[i].Group != ms[j].Group {
						return groupRank(mp, ms[i].Group) < groupRank(mp, ms[j].Group)
					}
					return ms[i].Resource < ms[j].Resource
				})
			}
			if o.output == "name" {
				for _, m := range ms {
					fmt.Fprintln(e.streams.Out, m.GroupResource())
				}
				return nil
			}
			var rows [][]string
			if !o.noHeaders {
				h := []string{"NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"}
				if o.output == "wide" {
					h = append(h, "VERBS", "CATEGORIES")
				}
				rows = append(rows, h)
			}
			for _, m := range ms {
				r := []string{m.Resource, strings.Join(m.ShortNames, ","), m.GroupVersion().String(), strconv.FormatBool(m.Namespaced), m.Kind}
				if o.output == "wide" {
					r = append(r, "["+strings.Join(m.Verbs, " ")+"]", strings.Join(m.Categories, ","))
				}
				rows = append(rows, r)
			}
			return printer.Text(e.streams.Out, rows)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", "", "Output format: wide or name")
	f.BoolVar(&o.noHeaders, "no-headers", false, "Leave out the header line")
	f.StringVar(&o.apiGroup, "api-group", "", "Only resources of this API group (\"\" is the core group)")
	f.BoolVar(&o.namespaced, "namespaced", true, "With --namespaced=true only namespaced resources, with false only cluster-scoped ones")
	f.StringSliceVar(&o.verbs, "verbs", nil, "Only resources supporting all these verbs (e.g. --verbs=list,watch)")
	f.StringVar(&o.sortBy, "sort-by", "", "Sort by name or kind")
	return cmd
}

func groupRank(mp *mapper, g string) int {
	for i, m := range mp.all {
		if m.Group == g {
			return i
		}
	}
	return len(mp.all)
}
