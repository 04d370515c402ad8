// The vendored AEGIS-256 (third_party/aegis256: libsodium's, for AES-NI) against known
// answers: the draft's test vectors with both tag lengths, the ones that must fail, and some
// of libsodium's own; and every changed bit of an input refused. What the sealed datagram
// makes of it (kind 7) is tested in wire_crypto_test.cpp.
#include <gtest/gtest.h>

#include <cstdint>
#include <string_view>
#include <vector>

#include "wire/crypto.hpp"

#if defined(MSTREAM_AEGIS256_AESNI)
extern "C" {
#include "aegis256_aesni.h"
}

namespace mstream::wire {
namespace {

using Buf = std::vector<std::uint8_t>;

Buf hex(std::string_view h) {
  auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  Buf out;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2)
    out.push_back(static_cast<std::uint8_t>(nibble(h[i]) << 4 | nibble(h[i + 1])));
  return out;
}

struct DraftVector {
  const char *key, *nonce, *ad, *msg, *ct, *tag128, *tag256;
};
struct FailingVector {
  const char *key, *nonce, *ad, *ct, *tag128, *tag256;
};
struct SodiumVector {
  const char *key, *nonce, *msg, *ad, *ct, *tag;
};

// The draft's AEGIS-256 test vectors (draft-irtf-cfrg-aegis-aead, appendix A.3; the
// repository's test-vectors/aegis-256-test-vectors.json at commit 35cf57d): key, nonce, ad,
// msg, ct, tag128, tag256.
constexpr DraftVector kDraft[] = {
    {"1001000000000000000000000000000000000000000000000000000000000000",
     "1000020000000000000000000000000000000000000000000000000000000000", "",
     "00000000000000000000000000000000", "754fc3d8c973246dcc6d741412a4b236",
     "3fe91994768b332ed7f570a19ec5896e",
     "1181a1d18091082bf0266f66297d167d2e68b845f61a3b0527d31fc7b7b89f13"},
    {"1001000000000000000000000000000000000000000000000000000000000000",
     "1000020000000000000000000000000000000000000000000000000000000000", "", "", "",
     "e3def978a0f054afd1e761d7553afba3",
     "6a348c930adbd654896e1666aad67de989ea75ebaa2b82fb588977b1ffec864a"},
    {"1001000000000000000000000000000000000000000000000000000000000000",
     "1000020000000000000000000000000000000000000000000000000000000000", "0001020304050607",
     "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
     "f373079ed84b2709faee373584585d60accd191db310ef5d8b11833df9dec711",
     "8d86f91ee606e9ff26a01b64ccbdd91d",
     "b7d28d0c3c0ebd409fd22b44160503073a547412da0854bfb9723020dab8da1a"},
    {"1001000000000000000000000000000000000000000000000000000000000000",
     "1000020000000000000000000000000000000000000000000000000000000000", "0001020304050607",
     "000102030405060708090a0b0c0d", "f373079ed84b2709faee37358458",
     "c60b9c2d33ceb058f96e6dd03c215652",
     "8c1cc703c81281bee3f6d9966e14948b4a175b2efbdc31e61a98b4465235c2d9"},
    {"1001000000000000000000000000000000000000000000000000000000000000",
     "1000020000000000000000000000000000000000000000000000000000000000",
     "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223242526272829",
     "101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637",
     "57754a7d09963e7c787583a2e7b859bb24fa1e04d49fd550b2511a358e3bca252a9b1b8b30cc4a67",
     "ab8a7d53fd0e98d727accca94925e128",
     "a3aca270c006094d71c20e6910b5161c0826df233d08919a566ec2c05990f734"},
};
// The draft's vectors that must fail (6 to 9): key, nonce, ad, ct, tag128, tag256.
constexpr FailingVector kDraftFailing[] = {
    {"1000020000000000000000000000000000000000000000000000000000000000",
     "1001000000000000000000000000000000000000000000000000000000000000", "0001020304050607",
     "f373079ed84b2709faee37358458", "c60b9c2d33ceb058f96e6dd03c215652",
     "8c1cc703c81281bee3f6d9966e14948b4a175b2efbdc31e61a98b4465235c2d9"},
    {"1001000000000000000000000000000000000000000000000000000000000000",
     "1000020000000000000000000000000000000000000000000000000000000000", "0001020304050607",
     "f373079ed84b2709faee37358459", "c60b9c2d33ceb058f96e6dd03c215652",
     "8c1cc703c81281bee3f6d9966e14948b4a175b2efbdc31e61a98b4465235c2d9"},
    {"1001000000000000000000000000000000000000000000000000000000000000",
     "1000020000000000000000000000000000000000000000000000000000000000", "0001020304050608",
     "f373079ed84b2709faee37358458", "c60b9c2d33ceb058f96e6dd03c215652",
     "8c1cc703c81281bee3f6d9966e14948b4a175b2efbdc31e61a98b4465235c2d9"},
    {"1001000000000000000000000000000000000000000000000000000000000000",
     "1000020000000000000000000000000000000000000000000000000000000000", "0001020304050607",
     "f373079ed84b2709faee37358458", "c60b9c2d33ceb058f96e6dd03c215653",
     "8c1cc703c81281bee3f6d9966e14948b4a175b2efbdc31e61a98b4465235c2da"},
};
// Some of libsodium's own (test/default/aead_aegis256.c at 1.0.22-RELEASE, entries 1, 4, 16, 24,
// 26, 44, 53, 58 of its 64), with 256-bit tags: longer and odd-sized inputs. key, nonce, msg, ad,
// ct, tag.
constexpr SodiumVector kSodium[] = {
    {"7083505997f52fdf86548d86ee87c1429ed91f108cd56384dc840269ef7fdd73",
     "18cd778e6f5b1d35d4ca975fd719a17aaf22c3eba01928b6a78bac5810c92c75",
     "5d6691271eb1b2261d1b34fa7560e274b83373343c2e49b2b6a82bc0f20cee85cd608d195c1a16679d72"
     "0441c95fae86631f3f2cd27f38f71cedc79aaca7fdddbd4da4eeb97632366db65ca21acd85b41fd1a9de"
     "688bddff433a4757eb084e6816dbc8ff93f5995804",
     "af5b16a480e6a1400be15c8e6b194c2aca175e3b5c3f3fbbeca865f9390a",
     "0943a3e659b86e267ffea969ddd6d6d63aa35d1a1f31fb6f47205104b132da65799cc64cc9f66ffa5ec4"
     "79550c2c5dfa006f827ef02e3ab4dae3446bf93ccb5c17e1ec0393f161fca94f2944d041f162e9c96455"
     "8b6b57d3bb393b9743b1f8338ff878a154800fd16c",
     "480091eb823480e8b29c7aa96ffd55a026ac3d7fa16787c36c25865131a639a4"},
    {"b8c6e8cea59ca9fd2922530ee61911c1ed1c5af98be8fb03cbb449adcea0ed83",
     "af5bc1abe7bafadee790390277874cdfcc1ac1955f249d1131555d345832f555",
     "b6c15f560be043d06aa27e15d8c901af6b19db7a15e1",
     "d899366a0b4e4d86cce5ba61aca2a84349c8de5757e008e94e7d7a3703",
     "4c8496dfa6c419ef3c4867769a9014bd17118c22eef5",
     "f81ceacaaae6263c33f836fa26d92b0f08eb0796135c7fe312c93add6a208e8a"},
    {"8011b1043674d753172302aa123478a121640daf4317957545749d0be6a91698",
     "57bd1ac0f3db407989f88a762f60b3eabd03d3bc3bae577f3818b15c0974ae9c",
     "be1833fd169fd745acaa7d8584c457657433e6a3237225a086d47806804120613d78344e097ecc6a5f86"
     "9d07",
     "",
     "e34dff511e16bf12570a6828843c414b8fdced120db36ea0223e8700f57bea4c9dfbec5d3195caa633d5"
     "2ee8",
     "0ac3f0459608a7f38b5b77c3f38c73f9ebc48253b316830b9583bcd51ba5c995"},
    {"e365b446bd38e82eec6f10ef0ab21ee388ad485f08935ab5b27d812c77c8c2eb",
     "b5d1efebc38b831ef46617bfc282e47e20a844c326c35981b0af5e97cf151cef", "a04e8c9a01dcc73001fc6a53",
     "c6064f3f164594ab4bfe65c76c753d81e110a255d3cd9e512c3ef38d54", "bca8a253d89f09d92b364671",
     "4ef59bdf41cb393aada19b052ed31e568855c6edb37d286078ea3c8b8969061b"},
    {"c9268f6053542789747187da6140b7566024b623dc9691a534bd730764b20a63",
     "b0cd1ad38a01130f0b312be85a9dd570937c0fa1050ec7c3aa31befc400b8283", "60bf644abf31501722",
     "3091f60cfb9fa8946e8a06b1a663e60b54a24f2e5f8eb5282d980a21878c794efaa2f6f699300e3facc6"
     "4197c5",
     "a3bdd452eecc7c431d", "32d6f160b3c802fc4a92344f6edd6bd47cc83630ac76b3f7d2d8ea38bf1d8886"},
    {"01f560d41c4dcdb3906e687c5fe23c070b9a8a9653987706f3357037d7d512d2",
     "a47633929b3fbfafd2c29d25ab1e8e3b6402aeecff25d60761355ef44ace4cb0",
     "6e085d40606a8042e71fc16b720cec34e47d9bd5e0676f74b6be17f7c78b53ab910980ed7b0622c24800"
     "6c0ff9e94b66b8944acfe6857f3241d0abdd8d70a4a81eb0c0a86dde53849e34643b9f37e173ed218d88"
     "bea948a240",
     "d7631a8eea17f31555b3d4abf16439f763501827180a1f5e58389f796f1c0b468f41ea3ff2e1c76cd02d"
     "180c9df1e19f6524b2a8d006f2f954f340a2f0a5a97946d39c34b935f5da5b081f18ecf457b6f0b33a37"
     "185ea8af64aa0ade40026580dafe1a5dfd2c4a7acfa8a8254897c7fd3b",
     "c309272b71ffd6ee1ed80b91ad22fe88d0488fa7c2dc4539f3452d6d6d1508c162bb8df3ec1fa5ebbd8a"
     "b738387d5b0e649cfd83e17b3e943ccedf4548171c82cb8f0b2ae39c48d78df07e282cc40c3068dc70f1"
     "fc080114c1",
     "786061e81d76bc07550cab11bc1ba1765b41e2967bc8736e11029968cbd85ba4"},
    {"782358a4bf3258130b1ab345e76184bd37eeff55c6efe7b8489626e5ba01741b",
     "3ae5c450b1f426cedd3f5445ee785b6c2718d587f4239053cbad839e7e19f044", "454e",
     "bc5971d3c8a7284f6218685581fc0e67572e5f124405136021536da07ec4d443015de3a708e72eaa943f"
     "5b5fb8f485472a3999e95dc3ab7cf72ecba533006681a49f39b5d5768e9ed22e3cfc7d20d3744308a651"
     "8d46a0",
     "8a75", "d5cf51a52be53fc9b297efd9c0f3421e598143718f7f46fc3dd542f166a65e8f"},
    {"88f3c9cd7b2f27295c5defc7ba7071996ae5d558192c1a4788efe8a3bc3559d0",
     "d1ec8bbec1bd039825009a00b35522ad81c8de7bbfb698551f880b05319330c6",
     "5fc7d4fba7f9018c91533584a5e61be925559d1c8b1270621aaa2f0f51ec69ee7b14628841e2a234f3ed"
     "4279e589bc40339928d600f79a051db41699a98a263864ae34909a7c37e9c833c106bc5e996c730879d7"
     "b94d18c87741a3e72bbbd30a5c7a",
     "9c",
     "efec904dfe14b42ca52b083ca46fc0ab80877b425e8cfbafdbcdf8600bcaa64afa05119ebbdd0f8db82a"
     "e71236c24cac6cc53b9e0ec701f94ae4a9217f9f63ad426394793cebb1f0af7ba4bf0dc8ac621c48e2a4"
     "35955afc79f095ba518e20bbe360",
     "1ed588fb6966a006fccc5f5a6e57949f9389f89c3e346bd8851610a0b159e958"},
};

const aegis256_implementation& aegis() { return mstream_aegis256_aesni_implementation; }

// Encrypts msg; *ct and *tag get the results (tag of tag_len bytes).
void encrypt(const Buf& key, const Buf& nonce, const Buf& ad, const Buf& msg, std::size_t tag_len,
             Buf* ct, Buf* tag) {
  ct->assign(msg.size(), 0);
  tag->assign(tag_len, 0);
  ASSERT_EQ(aegis().encrypt_detached(ct->data(), tag->data(), tag_len, msg.data(), msg.size(),
                                     ad.data(), ad.size(), nonce.data(), key.data()),
            0);
}

// Decrypts ct into *msg; whether it authenticated.
bool decrypt(const Buf& key, const Buf& nonce, const Buf& ad, const Buf& ct, const Buf& tag,
             Buf* msg) {
  msg->assign(ct.size(), 0xEE);
  return aegis().decrypt_detached(msg->data(), ct.data(), ct.size(), tag.data(), tag.size(),
                                  ad.data(), ad.size(), nonce.data(), key.data()) == 0;
}

class Aegis256 : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!aegis_available()) GTEST_SKIP() << "this CPU has no AES-NI and AVX for AEGIS-256";
  }
};

TEST_F(Aegis256, MatchesTheDraftsTestVectorsWithEitherTagLength) {
  for (const DraftVector& v : kDraft) {
    const Buf key = hex(v.key), nonce = hex(v.nonce), ad = hex(v.ad), msg = hex(v.msg);
    for (const char* want_tag : {v.tag128, v.tag256}) {
      const Buf tag_want = hex(want_tag);
      Buf ct, tag, back;
      encrypt(key, nonce, ad, msg, tag_want.size(), &ct, &tag);
      EXPECT_EQ(ct, hex(v.ct)) << v.ct;
      EXPECT_EQ(tag, tag_want) << want_tag;
      ASSERT_TRUE(decrypt(key, nonce, ad, hex(v.ct), tag_want, &back)) << want_tag;
      EXPECT_EQ(back, msg);
    }
  }
}

TEST_F(Aegis256, RefusesTheDraftsFailingVectorsAndLeavesNoPlaintext) {
  for (const FailingVector& v : kDraftFailing) {
    for (const char* tag : {v.tag128, v.tag256}) {
      Buf msg;
      EXPECT_FALSE(decrypt(hex(v.key), hex(v.nonce), hex(v.ad), hex(v.ct), hex(tag), &msg))
          << v.ct << " " << tag;
      EXPECT_EQ(msg, Buf(msg.size(), 0));  // wiped, as libsodium does
    }
  }
}

TEST_F(Aegis256, MatchesLibsodiumsTestVectors) {
  for (const SodiumVector& v : kSodium) {
    const Buf key = hex(v.key), nonce = hex(v.nonce), ad = hex(v.ad), msg = hex(v.msg);
    Buf ct, tag, back;
    encrypt(key, nonce, ad, msg, 32, &ct, &tag);
    EXPECT_EQ(ct, hex(v.ct)) << v.ct;
    EXPECT_EQ(tag, hex(v.tag)) << v.tag;
    ASSERT_TRUE(decrypt(key, nonce, ad, ct, tag, &back));
    EXPECT_EQ(back, msg);
  }
}

// Every bit of key, nonce, associated data, ciphertext and 128-bit tag counts.
TEST_F(Aegis256, RefusesEveryChangedBit) {
  const DraftVector& v = kDraft[4];  // associated data and a message of odd lengths
  const Buf key = hex(v.key), nonce = hex(v.nonce), ad = hex(v.ad), ct = hex(v.ct),
            tag = hex(v.tag128);
  Buf msg;
  ASSERT_TRUE(decrypt(key, nonce, ad, ct, tag, &msg));
  std::size_t refused = 0, tried = 0;
  for (int which = 0; which < 5; ++which) {
    Buf parts[] = {key, nonce, ad, ct, tag};
    Buf& part = parts[which];
    for (std::size_t i = 0; i < part.size() * 8; ++i) {
      part[i / 8] ^= static_cast<std::uint8_t>(1u << (i % 8));
      ++tried;
      refused += !decrypt(parts[0], parts[1], parts[2], parts[3], parts[4], &msg);
      part[i / 8] ^= static_cast<std::uint8_t>(1u << (i % 8));
    }
  }
  EXPECT_EQ(refused, tried);
  // A truncated tag or ciphertext does not authenticate either.
  EXPECT_FALSE(decrypt(key, nonce, ad, Buf(ct.begin(), ct.end() - 1), tag, &msg));
}

}  // namespace
}  // namespace mstream::wire

#endif  // MSTREAM_AEGIS256_AESNI
