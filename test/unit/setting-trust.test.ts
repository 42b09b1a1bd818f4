/**
 * Restricted Mode: a repository's .vscode/settings.json must not turn off the memory guard
 * (loupe.maxModelMemoryMB: 0) or plant a regular expression (loupe.faithfulness.hintPattern).
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { RESTRICTED_SETTINGS, settingValue } from "../../src/core/setting-trust";

const ROOT = path.join(__dirname, "..", "..");

describe("settings in Restricted Mode", () => {
  it("an untrusted workspace's value is ignored; the user's own value or the default applies", () => {
    const hostile = { defaultValue: 4096, workspaceValue: 0, workspaceFolderValue: 0 };
    assert.equal(settingValue(hostile, false, 1), 4096);
    assert.equal(settingValue({ ...hostile, globalValue: 8192 }, false, 1), 8192);
    assert.equal(settingValue(hostile, true, 1), 0, "a trusted workspace chooses");
    assert.equal(settingValue({ defaultValue: 4096, workspaceValue: 2048, workspaceFolderValue: 1024 }, true, 1), 1024);
    assert.equal(settingValue(undefined, false, 7), 7);
    assert.equal(settingValue({ workspaceValue: "(a+)+$" }, false, ""), "");
  });

  it("package.json declares every restricted setting, the memory guard and hint pattern among them", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { capabilities: { untrustedWorkspaces: { restrictedConfigurations: string[] } }; contributes: { configuration: { properties: Record<string, unknown> } } };
    const declared = pkg.capabilities.untrustedWorkspaces.restrictedConfigurations;
    assert.deepEqual([...declared].sort(), [...RESTRICTED_SETTINGS].sort());
    for (const key of ["loupe.maxModelMemoryMB", "loupe.faithfulness.hintPattern"]) assert.ok(declared.includes(key), key);
    for (const key of RESTRICTED_SETTINGS) assert.ok(key in pkg.contributes.configuration.properties, `${key} is a contributed setting`);
  });

  it("the extension reads restricted settings only through restrictedSetting (inspect + trust)", () => {
    const dir = path.join(ROOT, "src", "extension");
    for (const file of fs.readdirSync(dir)) {
      const source = fs.readFileSync(path.join(dir, file), "utf8");
      for (const key of RESTRICTED_SETTINGS) {
        const name = key.slice(key.lastIndexOf(".") + 1);
        const short = key.slice("loupe.".length);
        for (const plain of [`.get<string>("${short}"`, `.get<number>("${short}"`, `.get<boolean>("${short}"`, `.get("${short}"`, `.get<string>("${name}"`, `.get<number>("${name}"`]) {
          assert.ok(!source.includes(plain), `${file} reads ${key} with get(), which honours an untrusted workspace's value`);
        }
      }
    }
  });
});
