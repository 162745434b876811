// The CX extension's client: starts `cxpar lsp` over stdio for .cx files.
"use strict";
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const command = vscode.workspace.getConfiguration("cx").get("server.path") || "cxpar";
  const server = { command, args: ["lsp"] };
  client = new LanguageClient(
    "cx",
    "CX (cxpar lsp)",
    { run: server, debug: server },
    { documentSelector: [{ language: "cx" }] },
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
