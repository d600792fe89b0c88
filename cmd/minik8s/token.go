package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/minik8s/minik8s/apiserver"
	"github.com/minik8s/minik8s/apiserver/auth"
)

// tokenCommand is `minik8s token`: join tokens for a running (or stopped)
// server, by editing <data-dir>/tokens.csv, which the server re-reads
// every few seconds.
func tokenCommand() *cobra.Command {
	dataDir := apiserver.DefaultOptions().DataDir
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and delete the bearer tokens of a server (join tokens for agents)",
		Long: `token edits <data-dir>/tokens.csv on the server machine. A running API server
re-reads it every ` + apiserver.TokenReloadInterval.String() + `: a created token works and a deleted one is
refused within that time, with no restart. <data-dir>/node-token always holds the first
join token still in the file.

A node keeps the bearer token it joined with (in its kubelet.kubeconfig), so
deleting a join token cuts off every node that joined with it: restart those
agents with a current token. A token one of the server's own kubeconfigs uses
(admin, the components, node-join for its own node) is deleted only with
--force, and those clients work again only after the server restarts.`,
		Example: `  # a new join token for more nodes; the old ones stay valid
  minik8s token create
  # on the new node: minik8s agent --server https://192.168.56.10:6443 --token 'K10...'

  # rotate: create a new one, move the agents over, then retire the old one
  minik8s token list
  minik8s token delete 1a2b3c4d`,
	}
	cmd.PersistentFlags().StringVar(&dataDir, "data-dir", dataDir, "the server's --data-dir")

	cmd.AddCommand(&cobra.Command{
		Use:   "create",
		Short: "Mint a new join token (system:node-join) and print it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tok, err := apiserver.CreateJoinToken(dataDir)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the tokens of the token file, secrets masked",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := auth.LoadTokenFile(apiserver.TokenFilePath(dataDir))
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "TOKEN\tUSER\tGROUPS")
			for _, e := range f.Entries() {
				fmt.Fprintf(w, "%s\t%s\t%s\n", auth.MaskToken(e.Token), e.User.Name, strings.Join(e.User.Groups, ","))
			}
			return w.Flush()
		},
	})
	force := false
	del := &cobra.Command{
		Use:   "delete TOKEN|PREFIX",
		Short: "Delete one token: a whole join token, a bearer token, or its prefix from \"token list\"",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := apiserver.DeleteToken(dataDir, args[0], force)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted token %s of %s\n", auth.MaskToken(e.Token), e.User.Name)
			return nil
		},
	}
	del.Flags().BoolVar(&force, "force", false,
		"also delete a token the server's own kubeconfigs use (admin, components, its own node); they work again only after a server restart")
	cmd.AddCommand(del)
	return cmd
}
