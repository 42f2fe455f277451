// The public-safe view of the city profile: the city, its divisions down to township level (no
// village-level units, which the public pages do not need) and its departments. No personal data.
import { Type, type Static } from 'typebox';
import type { CityProfile } from '../../config/profile.ts';

export const CitySummarySchema = Type.Object(
  {
    city: Type.Object({
      code: Type.String({ description: '6-digit division code (GB/T 2260)' }),
      name: Type.String(),
      nameEn: Type.String(),
      portalName: Type.String(),
      portalNameEn: Type.String(),
      province: Type.Object({ code: Type.String(), name: Type.String() }),
    }),
    divisions: Type.Array(
      Type.Object({
        code: Type.String({ description: '6-digit county-level code' }),
        name: Type.String(),
        nameEn: Type.String(),
        kind: Type.String({ description: 'district, county-city or functional-zone' }),
        alias: Type.Optional(Type.String()),
        aliasEn: Type.Optional(Type.String()),
        children: Type.Array(
          Type.Object({
            code: Type.String({ description: '9-digit township-level code' }),
            name: Type.String(),
            nameEn: Type.String(),
            kind: Type.String({ description: 'street, town or functional-zone' }),
          }),
        ),
      }),
    ),
    departments: Type.Array(
      Type.Object({
        code: Type.String(),
        name: Type.String(),
        nameEn: Type.String(),
        abbr: Type.String(),
        kind: Type.String(),
      }),
    ),
    source: Type.Object({ divisions: Type.String({ description: 'attribution of the division data' }) }),
  },
  { description: 'The city profile as the public may see it' },
);

export type CitySummary = Static<typeof CitySummarySchema>;

export function citySummary(profile: CityProfile): CitySummary {
  const { city } = profile;
  return {
    city: {
      code: city.code,
      name: city.name,
      nameEn: city.nameEn,
      portalName: city.portalName,
      portalNameEn: city.portalNameEn,
      province: { code: city.province.code, name: city.province.name },
    },
    divisions: profile.divisions.map((d) => ({
      code: d.code,
      name: d.name,
      nameEn: d.nameEn,
      kind: d.kind,
      ...(d.alias ? { alias: d.alias } : {}),
      ...(d.aliasEn ? { aliasEn: d.aliasEn } : {}),
      children: d.children.map((s) => ({ code: s.code, name: s.name, nameEn: s.nameEn, kind: s.kind })),
    })),
    departments: profile.departments.map((d) => ({ code: d.code, name: d.name, nameEn: d.nameEn, abbr: d.abbr, kind: d.kind })),
    source: { divisions: profile.divisionsSource },
  };
}

export function townshipCount(profile: CityProfile): number {
  return profile.divisions.reduce((n, d) => n + d.children.length, 0);
}
