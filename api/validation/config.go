package validation

import (
	"encoding/json"
	"fmt"
	"maps"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ValidateConfigMap validates a new ConfigMap.
func ValidateConfigMap(cm *corev1.ConfigMap) field.ErrorList {
	errs := apivalidation.ValidateObjectMeta(&cm.ObjectMeta, true, apivalidation.NameIsDNSSubdomain, field.NewPath("metadata"))
	return append(errs, validateConfigMapData(cm)...)
}

// validateConfigMapData checks keys are config map keys, data and
// binaryData do not share keys, and the total stays within 1 MiB.
func validateConfigMapData(cm *corev1.ConfigMap) field.ErrorList {
	var errs field.ErrorList
	total := 0
	for key, value := range cm.Data {
		p := field.NewPath("data").Key(key)
		errs = append(errs, validateConfigKey(key, p)...)
		if _, dup := cm.BinaryData[key]; dup {
			errs = append(errs, field.Invalid(p, key, "duplicate of key present in binaryData"))
		}
		total += len(value)
	}
	for key, value := range cm.BinaryData {
		errs = append(errs, validateConfigKey(key, field.NewPath("binaryData").Key(key))...)
		total += len(value)
	}
	if total > corev1.MaxSecretSize {
		// The limit covers data and binaryData together; the error names
		// data, the field users usually overfill.
		errs = append(errs, field.TooLong(field.NewPath("data"), "", corev1.MaxSecretSize))
	}
	return errs
}

func validateConfigKey(key string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsConfigMapKey(key) {
		errs = append(errs, field.Invalid(fldPath, key, msg))
	}
	return errs
}

func isTrue(b *bool) bool { return b != nil && *b }

const immutableMsg = "field is immutable when `immutable` is set"

// ValidateConfigMapUpdate validates a ConfigMap update: once immutable is
// true, neither the flag nor the data may change.
func ValidateConfigMapUpdate(newCM, oldCM *corev1.ConfigMap) field.ErrorList {
	errs := apivalidation.ValidateObjectMetaUpdate(&newCM.ObjectMeta, &oldCM.ObjectMeta, field.NewPath("metadata"))
	if isTrue(oldCM.Immutable) {
		if !isTrue(newCM.Immutable) {
			errs = append(errs, field.Forbidden(field.NewPath("immutable"), immutableMsg))
		}
		if !maps.Equal(newCM.Data, oldCM.Data) {
			errs = append(errs, field.Forbidden(field.NewPath("data"), immutableMsg))
		}
		if !maps.EqualFunc(newCM.BinaryData, oldCM.BinaryData, bytesEqual) {
			errs = append(errs, field.Forbidden(field.NewPath("binaryData"), immutableMsg))
		}
	}
	return append(errs, validateConfigMapData(newCM)...)
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }

// ValidateSecret validates a new Secret. The API server is expected to have
// merged stringData into data already; stringData keys are still checked
// in case it has not.
func ValidateSecret(s *corev1.Secret) field.ErrorList {
	errs := apivalidation.ValidateObjectMeta(&s.ObjectMeta, true, apivalidation.NameIsDNSSubdomain, field.NewPath("metadata"))
	return append(errs, validateSecretData(s)...)
}

func validateSecretData(s *corev1.Secret) field.ErrorList {
	var errs field.ErrorList
	dataPath := field.NewPath("data")
	total := 0
	for key, value := range s.Data {
		errs = append(errs, validateConfigKey(key, dataPath.Key(key))...)
		total += len(value)
	}
	for key, value := range s.StringData {
		errs = append(errs, validateConfigKey(key, field.NewPath("stringData").Key(key))...)
		if _, dup := s.Data[key]; !dup {
			total += len(value)
		}
	}
	if total > corev1.MaxSecretSize {
		errs = append(errs, field.TooLong(dataPath, "", corev1.MaxSecretSize))
	}

	has := func(key string) bool {
		_, inData := s.Data[key]
		_, inString := s.StringData[key]
		return inData || inString
	}
	value := func(key string) []byte {
		if v, ok := s.StringData[key]; ok {
			return []byte(v)
		}
		return s.Data[key]
	}
	requireKey := func(key string) {
		if !has(key) {
			errs = append(errs, field.Required(dataPath.Key(key), ""))
		}
	}
	typePath := field.NewPath("type")
	switch s.Type {
	case "":
		errs = append(errs, field.Required(typePath, ""))
	case corev1.SecretTypeServiceAccountToken:
		if s.Annotations[corev1.ServiceAccountNameKey] == "" {
			errs = append(errs, field.Required(field.NewPath("metadata", "annotations").Key(corev1.ServiceAccountNameKey), ""))
		}
	case corev1.SecretTypeDockercfg:
		requireKey(corev1.DockerConfigKey)
		errs = append(errs, validateJSONValue(has(corev1.DockerConfigKey), value(corev1.DockerConfigKey), dataPath.Key(corev1.DockerConfigKey))...)
	case corev1.SecretTypeDockerConfigJson:
		requireKey(corev1.DockerConfigJsonKey)
		errs = append(errs, validateJSONValue(has(corev1.DockerConfigJsonKey), value(corev1.DockerConfigJsonKey), dataPath.Key(corev1.DockerConfigJsonKey))...)
	case corev1.SecretTypeBasicAuth:
		if !has(corev1.BasicAuthUsernameKey) && !has(corev1.BasicAuthPasswordKey) {
			errs = append(errs, field.Required(dataPath.Key(corev1.BasicAuthUsernameKey), ""),
				field.Required(dataPath.Key(corev1.BasicAuthPasswordKey), ""))
		}
	case corev1.SecretTypeSSHAuth:
		requireKey(corev1.SSHAuthPrivateKey)
	case corev1.SecretTypeTLS:
		requireKey(corev1.TLSCertKey)
		requireKey(corev1.TLSPrivateKeyKey)
	default:
		// Opaque and user-defined types carry any keys.
	}
	return errs
}

func validateJSONValue(present bool, value []byte, fldPath *field.Path) field.ErrorList {
	if !present {
		return nil
	}
	var v map[string]any
	if err := json.Unmarshal(value, &v); err != nil {
		return field.ErrorList{field.Invalid(fldPath, "<secret contents redacted>", fmt.Sprintf("must be valid JSON: %v", err))}
	}
	return nil
}

// ValidateSecretUpdate validates a Secret update: type never changes, and
// once immutable is true neither the flag nor the data may change.
func ValidateSecretUpdate(newS, oldS *corev1.Secret) field.ErrorList {
	errs := apivalidation.ValidateObjectMetaUpdate(&newS.ObjectMeta, &oldS.ObjectMeta, field.NewPath("metadata"))
	errs = append(errs, validateImmutable(newS.Type, oldS.Type, field.NewPath("type"))...)
	if isTrue(oldS.Immutable) {
		if !isTrue(newS.Immutable) {
			errs = append(errs, field.Forbidden(field.NewPath("immutable"), immutableMsg))
		}
		if !maps.EqualFunc(newS.Data, oldS.Data, bytesEqual) || len(newS.StringData) > 0 {
			errs = append(errs, field.Forbidden(field.NewPath("data"), immutableMsg))
		}
	}
	return append(errs, validateSecretData(newS)...)
}
