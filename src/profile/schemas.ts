/**
 * Member profile: nickname, avatar, birthday, gender. Complete = nickname, avatar and birthday set.
 */
import { Type } from '@sinclair/typebox';

export const GENDERS = ['female', 'male', 'other', 'undisclosed'] as const;
export type Gender = (typeof GENDERS)[number];

const GenderSchema = Type.Union([Type.Literal('female'), Type.Literal('male'), Type.Literal('other'), Type.Literal('undisclosed')]);
const NullableGender = Type.Union([GenderSchema, Type.Null()]);
const nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);

export const ProfileSchema = Type.Object({
  nickname: nullable(Type.String()),
  avatarUrl: nullable(Type.String()),
  birthday: nullable(Type.String({ format: 'date' })),
  gender: NullableGender,
  complete: Type.Boolean({ description: 'Nickname, avatar and birthday have all been set (recorded once)' }),
  completedAt: nullable(Type.String({ format: 'date-time' })),
});

export const PatchProfileBodySchema = Type.Object(
  {
    nickname: Type.Optional(
      nullable(Type.String({ minLength: 1, maxLength: 32, pattern: '^[^\\u0000-\\u001F\\u007F]+$', description: '1-32 characters, not only spaces' })),
    ),
    avatarUrl: Type.Optional(nullable(Type.String({ format: 'uri', maxLength: 2048, description: 'An http(s) URL' }))),
    birthday: Type.Optional(nullable(Type.String({ format: 'date', description: 'YYYY-MM-DD, from 1900-01-01 up to today' }))),
    gender: Type.Optional(NullableGender),
  },
  { additionalProperties: false, minProperties: 1, description: 'Fields to set; null clears one' },
);
