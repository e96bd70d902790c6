# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An OData service's ``$metadata`` (CSDL XML): entity types, their keys, typed properties and
single-valued navigation properties, and the entity sets of the container."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from ansible_collections.tablesync.integration.plugins.module_utils.errors import EndpointError


@dataclass
class EntityType:
    name: str
    namespace: str
    key: list[str] = field(default_factory=list)
    properties: dict[str, tuple[str, int | None, bool]] = field(default_factory=dict)  # name -> (type, max length, nullable)
    navigation: dict[str, str] = field(default_factory=dict)  # name -> target type name (unqualified)
    base: str | None = None


@dataclass
class Metadata:
    types: dict[str, EntityType]
    sets: dict[str, str]  # entity set -> entity type (unqualified)

    @classmethod
    def parse(cls, text: bytes) -> Metadata:
        try:
            root = ET.fromstring(text)
        except ET.ParseError as exc:
            raise EndpointError("the service's $metadata is not valid XML: %s" % exc) from None
        types: dict[str, EntityType] = {}
        sets: dict[str, str] = {}
        for schema in root.iter():
            if _local(schema.tag) != "Schema":
                continue
            namespace = schema.get("Namespace", "")
            for node in schema:
                tag = _local(node.tag)
                if tag == "EntityType":
                    et = EntityType(node.get("Name", ""), namespace, base=_unqualify(node.get("BaseType")))
                    for child in node:
                        ctag = _local(child.tag)
                        if ctag == "Key":
                            et.key = [ref.get("Name", "") for ref in child if _local(ref.tag) == "PropertyRef"]
                        elif ctag == "Property":
                            length = child.get("MaxLength")
                            et.properties[child.get("Name", "")] = (
                                child.get("Type", "Edm.String"),
                                int(length) if length and length.isdigit() else None,
                                child.get("Nullable", "true").lower() != "false",
                            )
                        elif ctag == "NavigationProperty" and not child.get("Type", "").startswith("Collection("):
                            et.navigation[child.get("Name", "")] = _unqualify(child.get("Type")) or ""
                    types[et.name] = et
                elif tag == "EntityContainer":
                    for child in node:
                        if _local(child.tag) == "EntitySet":
                            sets[child.get("Name", "")] = _unqualify(child.get("EntityType")) or ""
        return cls(types, sets)

    def resolved(self, type_name: str) -> EntityType:
        """The entity type with the properties, navigation and key of its base types merged in."""
        et = self.types[type_name]
        if et.base and et.base in self.types:
            base = self.resolved(et.base)
            return EntityType(et.name, et.namespace, et.key or base.key, {**base.properties, **et.properties},
                              {**base.navigation, **et.navigation}, None)
        return et

    def set_of_type(self, type_name: str) -> str | None:
        for name, t in self.sets.items():
            if t == type_name:
                return name
        return None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _unqualify(name: str | None) -> str | None:
    return name.rsplit(".", 1)[-1] if name else None
