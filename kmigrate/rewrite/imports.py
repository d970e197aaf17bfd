"""Imports: which Keras 1 module paths and names the collector finds, and how the applier rewrites them
(aliases kept, one import naming every name the rewritten calls need)."""

from __future__ import annotations

import libcst as cst
from libcst import MaybeSentinel
from libcst.helpers import get_full_name_for_node
from libcst.metadata import ImportAssignment, ScopeProvider

from kmigrate.rewrite.binding import renamed_name
from kmigrate.rewrite.plans import ImportPlan


class ImportCollector:
    """Import statements as the collector reads them (mixed into the Collector)."""

    # -- visitors --------------------------------------------------------------------------------
    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        self.import_nodes.append(node)
        if isinstance(node.names, cst.ImportStar):
            self.any_star = True
        if node.relative or node.module is None:
            return
        module = get_full_name_for_node(node.module)
        if module.split(".")[0] == "keras":
            self.keras_imported = True
        if module in self.module_map:
            self.plans.imports_change = True
            self.keras1_evidence = True
        if not isinstance(node.names, cst.ImportStar) and any(
                f"{module}.{get_full_name_for_node(a.name)}" in self.module_map for a in node.names):
            self.plans.imports_change = True  # `from keras.layers import convolutional`
        if isinstance(node.names, cst.ImportStar):
            if module in self.layer_modules:
                self.star_modules.append(module)
            self.check_name(node, module)
        else:
            self.imports.append(node)
            for alias in node.names:
                self.check_name(alias, f"{module}.{get_full_name_for_node(alias.name)}")

    def visit_Import(self, node: cst.Import) -> None:
        self.import_nodes.append(node)
        if any(get_full_name_for_node(a.name).split(".")[0] == "keras" for a in node.names):
            self.keras_imported = True
        if any(get_full_name_for_node(a.name) in self.module_map for a in node.names):
            self.plans.imports_change = True
        for alias in node.names:
            self.check_name(alias, get_full_name_for_node(alias.name))

    def _renamed_elsewhere(self, imp: cst.ImportFrom, alias: cst.ImportAlias) -> bool:
        return renamed_name(self.rs, get_full_name_for_node(imp.module), get_full_name_for_node(alias.name)) is not None

    def finish_imports(self) -> None:
        """How many references of each imported name the rewrite renames."""
        for imp in self.imports:
            for alias in imp.names:
                bound = alias.evaluated_alias or alias.evaluated_name
                plan = ImportPlan()
                scope = self.get_metadata(ScopeProvider, imp, None)
                if scope is None:
                    continue
                for assignment in scope[bound]:
                    if isinstance(assignment, ImportAssignment) and assignment.node is imp:
                        for ref in assignment.references:
                            plan.total += 1
                            if ref.node in self.plans.renamed_refs:
                                plan.rewritten += 1
                                self.plans.imports_change = True
                if plan.total == 0 and self._renamed_elsewhere(imp, alias):
                    self.plans.imports_change = True  # an unused Keras 1 name: import what Keras 3 has
                self.plans.imports[(id(imp), bound)] = plan


class ImportApplier:
    """Import statements as the applier rewrites them (mixed into the Applier)."""

    def leave_ImportFrom(self, original: cst.ImportFrom, updated: cst.ImportFrom) -> cst.ImportFrom:
        if original.relative or original.module is None:
            return updated
        module = get_full_name_for_node(original.module)
        if not isinstance(updated.names, cst.ImportStar) and len(updated.names) == 1:
            alias = updated.names[0]
            moved = self.module_map.get(f"{module}.{get_full_name_for_node(alias.name)}")
            if moved:  # `from keras.layers import convolutional` -> `from keras import layers as convolutional`
                parent, last = moved.rsplit(".", 1)
                bound = alias.evaluated_alias or get_full_name_for_node(alias.name)
                return updated.with_changes(module=cst.parse_expression(parent), names=[cst.ImportAlias(
                    name=cst.Name(last), asname=None if bound == last else cst.AsName(name=cst.Name(bound)))])
        new_module = self.module_map.get(module)
        if new_module:
            updated = updated.with_changes(module=cst.parse_expression(new_module))
        if isinstance(updated.names, cst.ImportStar):
            return updated
        names: list[cst.ImportAlias] = []
        seen: set[str] = set()
        for alias in updated.names:
            imported = get_full_name_for_node(alias.name)
            bound = alias.evaluated_alias or imported
            key = (id(original), bound)
            plan = self.plans.imports.get(key, ImportPlan())
            wanted = sorted(self.plans.import_targets.get(key, set()))
            target = self._target_name(module, imported)
            if plan.rewritten < plan.total or (target is None and not wanted):
                wanted.insert(0, (imported, True))  # still used as written
            if not wanted and plan.total == 0 and target is not None:
                wanted = [(target, True)]  # unused: name what Keras 3 has
            for name, keep_alias in wanted:
                asname = alias.asname if keep_alias else None
                if (asname and asname.name.value in seen) or (not asname and name in seen):
                    continue  # one alias cannot name two things; a name is imported once
                seen.add(asname.name.value if asname else name)
                names.append(alias.with_changes(name=cst.Name(name), asname=asname)
                             if (name, asname) != (imported, alias.asname) else alias)
        if not names:
            return updated  # never an empty import
        if names:
            names[-1] = names[-1].with_changes(comma=updated.names[-1].comma)
            for j in range(len(names) - 1):
                if names[j].comma is MaybeSentinel.DEFAULT or names[j].comma is updated.names[-1].comma:
                    names[j] = names[j].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
        return updated.with_changes(names=names)

    def _target_name(self, module: str, imported: str) -> str | None:
        return renamed_name(self.rs, module, imported)

    def leave_Import(self, original: cst.Import, updated: cst.Import) -> cst.Import:
        if not self.module_map:
            return updated
        names = []
        for alias in updated.names:
            full = get_full_name_for_node(alias.name)
            new = self.module_map.get(full)
            names.append(alias.with_changes(name=cst.parse_expression(new)) if new else alias)
        return updated.with_changes(names=names)
